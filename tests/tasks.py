"""Tasks the tests submit; shared tasks, so every Celery app the factory creates has them."""

from __future__ import annotations

import enum
import time
import uuid
from collections import Counter
from datetime import datetime
from decimal import Decimal
from typing import Any

from celery import Task, shared_task
from celery.exceptions import SoftTimeLimitExceeded
from flask import current_app, g, has_app_context

from app.observability.logs import current_request_id
from app.tasking import ClientError, TransientError


@shared_task(bind=True)
def context_probe(self: Task) -> dict[str, Any]:
    """Report what the task sees of the Flask app context it runs in."""
    g.probe_task_id = self.request.id  # teardown_appcontext handlers can see it
    return {
        "has_app_context": has_app_context(),
        "config_file": current_app.config["CONFIG_FILE"],
        "marker": current_app.config.get("MARKER"),
        "task_id": self.request.id,
        "request_id": current_request_id(),
    }


@shared_task
def relay_task() -> str:
    """Start `context_probe` from inside a task; answer its id."""
    return str(context_probe.delay().id)


@shared_task
def failing_task(message: str, for_the_client: bool = False) -> None:
    """Fail the way application code does; or with an error meant for the client."""
    raise (ClientError if for_the_client else ValueError)(message)


@shared_task
def unserializable_task() -> object:
    """Return what JSON cannot carry."""
    return object()


@shared_task
def stubborn_task(seconds: float) -> None:
    """Sleep through the soft time limit, as code that swallows every exception would."""
    try:
        time.sleep(seconds)
    except SoftTimeLimitExceeded:
        time.sleep(seconds)


# Runs of `counted_task` by key, in this process (the embedded worker's).
RUNS: Counter[str] = Counter()


@shared_task
def counted_task(key: str) -> int:
    """Count a run under `key`; answer how many runs it has had."""
    RUNS[key] += 1
    return RUNS[key]


@shared_task(bind=True)
def flaky_task(self: Task, failures: int) -> int:
    """Fail with a transient error `failures` times, then succeed; answer the attempt that did."""
    if self.request.retries < failures:
        raise TransientError(f"dependency away (attempt {self.request.retries + 1})")
    return int(self.request.retries) + 1


@shared_task
def summed_task(numbers: list[int]) -> int:
    """Add up `numbers`: a parameter with items of its own."""
    return sum(numbers)


@shared_task
def echoed_task(value):  # type: ignore[no-untyped-def]  # a parameter without an annotation
    """Answer `value`, whatever JSON it is."""
    return value


class Colour(enum.Enum):
    """An Enum parameter's type."""

    RED = "red"


@shared_task
def typed_task(when: datetime, ref: uuid.UUID, amount: Decimal, colour: Colour) -> dict[str, Any]:
    """Answer the types it was given, and values JSON has no type for: a date, bytes, a decimal."""
    types = [type(value).__name__ for value in (when, ref, amount, colour)]
    return {"types": types, "on": when.date(), "raw": b"\xff", "amount": amount}


# A body for typed_task, as a client writes it; `typed_task` answers TYPED_RESULT for it.
TYPED_BODY = {"when": "2025-01-02T03:04:05Z", "ref": str(uuid.UUID(int=1)), "amount": "12.50", "colour": "red"}
TYPED_RESULT = {"types": ["datetime", "UUID", "Decimal", "str"], "on": "2025-01-02", "raw": "/w==", "amount": "12.50"}
