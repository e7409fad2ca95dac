"""The sample task, and how the API submits tasks so that their ids can be looked up."""

from __future__ import annotations

import logging
import random
import sys
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from celery import Task, shared_task, states
from celery.exceptions import BackendError, Ignore
from celery.worker.state import revoked as revoked_tasks
from flask import current_app
from kombu.exceptions import OperationalError

CONFIRM_TIMEOUT = 0.5
# The id record is written once, not retried: a stalled backend then answers 503 in one
# socket timeout (2 s) instead of Redis's write retries' minute (app/fixes/redis_results.py).
ID_RECORD_RETRY_POLICY = {"max_retries": 0}
# The state of a running task that reports how far it has come.
PROGRESS = "PROGRESS"

logger = logging.getLogger(__name__)


class TransientError(Exception):
    """A failure worth another try later (a dependency briefly away): raise it from a task to be retried."""


# What any task of the factory's Celery app may raise to be retried (celery_app.FlaskTask).
TRANSIENT_ERRORS = (TransientError, ConnectionError, TimeoutError)


def retry_countdown(config: Mapping[str, Any], retries: int) -> float:
    """Seconds before the next attempt: exponential backoff with full jitter.

    Up to ``retry_backoff_seconds * 2**retries`` (capped by ``retry_backoff_max_seconds``),
    drawn at random so that tasks failing together do not all come back together.
    """
    ceiling = min(config["RETRY_BACKOFF_MAX_SECONDS"], config["RETRY_BACKOFF_SECONDS"] * 2**retries)
    return random.uniform(0, ceiling)


def backend_errors(backend: Any) -> tuple[type[BaseException], ...]:
    """What a result backend raises when it cannot serve (Redis: down, OOM, read-only; a database: down)."""
    errors = (*getattr(backend, "connection_errors", ()), *getattr(backend, "channel_errors", ()), OSError)
    # BackendError: a backend that retries (result_backend_always_retry) gave up.
    errors += (BackendError, *_database_errors(backend))
    # kombu counts KeyError among Redis connection errors (for its own consumer); here it
    # would turn a bug in a view into "backend unreachable".
    return tuple(error for error in errors if error is not KeyError)


def _database_errors(backend: object) -> tuple[type[BaseException], ...]:
    """SQLAlchemy's errors for a database it cannot reach or talk to, for Celery's database backend.

    Not its other DatabaseErrors (a missing table, a bad query): those stay bugs (500).
    """
    # Loaded only where the backend is a database one: other processes never import SQLAlchemy.
    database = sys.modules.get("celery.backends.database")
    if database is None or not isinstance(backend, database.DatabaseBackend):
        return ()
    from sqlalchemy.exc import InterfaceError, OperationalError

    return (OperationalError, InterfaceError)


# Progress is reported, and a cancel looked for, this many times a run.
PROGRESS_STEPS = 10


@shared_task(bind=True, ignore_result=False)  # type: ignore[untyped-decorator]
def sample_task(self: Task, seconds: float | None = None) -> datetime:
    """Sleep for `seconds` (else the configured time) in steps, then return when it finished (UTC).

    Between steps it reports its progress (state PROGRESS, ``{"progress": 0..1}``) and
    stops if it was cancelled: the prefork pool kills a cancelled task's process, the other
    pools (solo, threads) run it in the worker's own process and must be asked.
    """
    # Reading current_app works only because the task runs in the app context.
    total = current_app.config["SAMPLE_TASK_SECONDS"] if seconds is None else seconds
    logger.info("sleeping for %s s", total)
    for step in range(PROGRESS_STEPS if total else 0):
        checkpoint(self, progress=step / PROGRESS_STEPS)
        time.sleep(total / PROGRESS_STEPS)
    checkpoint(self)
    return datetime.now(UTC)


def checkpoint(task: Task, progress: float | None = None) -> None:
    """Stop if the task was cancelled, else record its ``progress``; go on while the backend is away.

    Neither is the task's work: a result backend out of reach for a moment (restarted, or
    this host cut off from the network) must not fail a long task. Each check then costs
    one read's timeout; the result is stored at the end, as for any task.
    """
    try:
        stop_if_cancelled(task)
        if progress is not None:
            task.update_state(state=PROGRESS, meta={"progress": progress})
    except backend_errors(task.backend) as error:
        logger.warning("result backend unreachable (%s): progress not recorded, cancel not looked for", error)


def stop_if_cancelled(task: Task) -> None:
    """Raise Ignore if the task was cancelled (DELETE /task/<id>), leaving its state REVOKED.

    The API stores REVOKED; the worker is told too, but a solo pool reads control
    messages only between tasks, so the stored state is what counts. Read before each
    progress write, which would otherwise hide it (a cancel in the instant between the
    read and the write is missed). Ignore keeps Celery from storing anything after.
    """
    if task.request.id in revoked_tasks or task.backend.get_state(task.request.id) == states.REVOKED:
        task.backend.mark_as_revoked(task.request.id, "cancelled while running", request=task.request)
        raise Ignore()


def submit(task: Task, *args: Any, **kwargs: Any) -> str:
    """Queue ``task`` under a new id and return it (see ``submit_as``)."""
    return submit_as(str(uuid.uuid4()), task, *args, **kwargs)


def submit_as(task_id: str, task: Task, *args: Any, **kwargs: Any) -> str:
    """Queue ``task`` as ``task_id`` and return the id, after recording that the id exists.

    Celery reports PENDING for any id it never saw, so a queued task would look like a
    typo. Storing a PENDING record before publishing lets ``AsyncResult.exists()`` tell
    them apart; it is written first so a fast worker's result can't be overwritten.
    """
    task.backend.store_result(task_id, None, states.PENDING, retry_policy=ID_RECORD_RETRY_POLICY)
    try:
        # A broker that accepted the connection but stopped answering must not hang the
        # request: wait this long for RabbitMQ's publisher confirm, then fail (and retry
        # once, as task_publish_retry_policy says). The Redis transport ignores it: its
        # socket_timeout (BROKER_DEFAULTS) bounds the publish instead.
        task.apply_async(args, kwargs, task_id=task_id, confirm_timeout=CONFIRM_TIMEOUT)
    except OperationalError:
        # Refused (503), yet the broker may hold the message: RabbitMQ reads a publish before
        # it blocks the connection (app/fixes/amqp_blocked.py), a stalled broker may deliver
        # what it never confirmed. A worker never runs a task stored as REVOKED, a final
        # state: a refused task never runs.
        task.backend.mark_as_revoked(task_id, "refused: the broker did not accept it")
        raise
    logger.info("queued %s[%s]", task.name, task_id)
    return task_id
