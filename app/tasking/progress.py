"""``checkpoint(self, progress=...)``: a running task reports how far it has come, and stops if cancelled."""

from __future__ import annotations

import logging

from celery import Task, states
from celery.exceptions import Ignore
from celery.worker.state import revoked as revoked_tasks

from app.tasking.errors import backend_errors

# The state of a running task that reports how far it has come (GET shows `progress`).
PROGRESS = "PROGRESS"

logger = logging.getLogger(__name__)


def checkpoint(task: Task, progress: float | None = None) -> None:
    """Stop if the task was cancelled, else record its ``progress`` (0 to 1); go on while the backend is away.

    Call it from a bound task (``@shared_task(bind=True)``) wherever stopping is safe:
    nothing kills a cancelled task. Neither is the task's work: a result backend out of
    reach for a moment must not fail a long task. Each check then costs one read's
    timeout; the result is stored at the end, as for any task.
    """
    try:
        _stop_if_cancelled(task)
        if progress is not None:
            task.update_state(state=PROGRESS, meta={"progress": progress})
    except backend_errors(task.backend) as error:
        logger.warning("result backend unreachable (%s): progress not recorded, cancel not looked for", error)


def _stop_if_cancelled(task: Task) -> None:
    """Raise Ignore if the task was cancelled, leaving its state REVOKED.

    DELETE /task/<id> stores REVOKED, which no later write replaces; the worker is told
    too, but only a process that reads control messages while the task runs (not the
    prefork pool's, not the solo pool) can know that way: the stored state is what counts.
    A cancel by Celery's own `revoke` alone is stored here. Ignore keeps Celery from
    storing anything after.
    """
    if task.request.id in revoked_tasks or task.backend.get_state(task.request.id) == states.REVOKED:
        task.backend.mark_as_revoked(task.request.id, "cancelled while running", request=task.request)
        raise Ignore()
