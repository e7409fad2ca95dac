"""The sample task, and how the API submits tasks so that their ids can be looked up."""

from __future__ import annotations

import logging
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from celery import Task, shared_task, states
from flask import current_app
from kombu.exceptions import OperationalError

CONFIRM_TIMEOUT = 0.5

logger = logging.getLogger(__name__)


@shared_task(ignore_result=False)  # type: ignore[untyped-decorator]
def sample_task() -> datetime:
    """Sleep for the configured time, then return when it finished (UTC)."""
    # Reading current_app works only because the task runs in the app context.
    seconds = current_app.config["SAMPLE_TASK_SECONDS"]
    logger.info("sleeping for %s s", seconds)
    time.sleep(seconds)
    return datetime.now(UTC)


def submit(task: Task, *args: Any, **kwargs: Any) -> str:
    """Queue ``task`` and return its id, after recording that the id exists.

    Celery reports PENDING for any id it never saw, so a queued task would look like a
    typo. Storing a PENDING record before publishing lets ``AsyncResult.exists()`` tell
    them apart; it is written first so a fast worker's result can't be overwritten.
    """
    task_id = str(uuid.uuid4())
    task.backend.store_result(task_id, None, states.PENDING)
    try:
        # A broker that accepted the connection but stopped answering must not hang the
        # request: wait this long for RabbitMQ's publisher confirm, then fail (and retry
        # once, as task_publish_retry_policy says). The Redis transport ignores it: its
        # socket_timeout (BROKER_DEFAULTS) bounds the publish instead.
        task.apply_async(args, kwargs, task_id=task_id, confirm_timeout=CONFIRM_TIMEOUT)
    except OperationalError:  # not published: the id must not look queued
        task.backend.forget(task_id)
        raise
    return task_id
