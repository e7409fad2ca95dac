"""The service's tasks: the sample, which ``POST /task/`` starts (app/routes.py). Add yours here.

A task's signature is its API: ``expose()`` in app/routes.py checks a request's JSON body against it.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Annotated, Any

from celery import Task, shared_task
from celery.utils.log import get_task_logger
from flask import current_app
from pydantic import AfterValidator, Field

from app.tasking import checkpoint

# Progress is reported, and a cancel looked for, this many times a run.
PROGRESS_STEPS = 10

logger = get_task_logger(__name__)


def _at_most_the_configured_maximum(seconds: float) -> float:
    limit = current_app.config["SAMPLE_TASK_MAX_SECONDS"]
    if seconds > limit:
        raise ValueError(f"expected a number from 0 to {limit}")
    return seconds


def _state_the_configured_maximum(schema: dict[str, Any]) -> None:
    schema["maximum"] = current_app.config["SAMPLE_TASK_MAX_SECONDS"]


# 0 to the config's sample_task_max_seconds: a limit read as a request comes, not at import.
Seconds = Annotated[
    float,
    Field(ge=0, json_schema_extra=_state_the_configured_maximum),
    AfterValidator(_at_most_the_configured_maximum),
]


@shared_task(bind=True)  # type: ignore[untyped-decorator]
def sample_task(self: Task, seconds: Seconds | None = None) -> datetime:
    """Sleep for `seconds` (else the configured time) in steps, then return when it finished (UTC).

    Between steps it reports its progress (state PROGRESS, ``{"progress": 0..1}``) and
    stops if it was cancelled.
    """
    # Reading current_app works only because the task runs in the app context.
    total = current_app.config["SAMPLE_TASK_SECONDS"] if seconds is None else seconds
    logger.info("sleeping for %s s", total)
    for step in range(PROGRESS_STEPS if total else 0):
        checkpoint(self, progress=step / PROGRESS_STEPS)
        time.sleep(total / PROGRESS_STEPS)
    checkpoint(self)
    return datetime.now(UTC)
