"""What a task may use: ``checkpoint()`` (progress and cancel), ``TransientError`` (retried), ``ClientError``.

And what a result backend raises when it cannot serve (``backend_errors``), for the run guard and the routes.
"""

from __future__ import annotations

import logging
import sys

from celery import Task, states
from celery.exceptions import BackendError, Ignore
from celery.worker.state import revoked as revoked_tasks

# The state of a running task that reports how far it has come (GET shows `progress`).
PROGRESS = "PROGRESS"

logger = logging.getLogger(__name__)


class TransientError(Exception):
    """A failure worth another try later (a dependency briefly away): raise it from a task to be retried."""


class ClientError(Exception):
    """A failure whose message is meant for the client: GET /task/<id> shows it (other errors' text: the logs only)."""


# What any task of the factory's Celery app is retried for (celery_app.FlaskTask).
TRANSIENT_ERRORS = (TransientError, ConnectionError, TimeoutError)


def checkpoint(task: Task, progress: float | None = None) -> None:
    """Stop if the task was cancelled, else record its ``progress`` (0 to 1); go on while the backend is away.

    Call it from a bound task wherever stopping is safe: nothing kills a cancelled task.
    """
    if task.request.called_directly:  # a plain call (``sample_task(seconds=0)``): no task id, nothing to record
        return
    try:
        # The stored state counts: prefork and solo pools read no control message while a task
        # runs. A cancel by Celery's own ``revoke`` alone is stored here.
        if task.request.id in revoked_tasks or task.backend.get_state(task.request.id) == states.REVOKED:
            task.backend.mark_as_revoked(task.request.id, "cancelled while running", request=task.request)
            raise Ignore()  # nothing stored after: the state stays REVOKED
        if progress is not None:
            task.update_state(state=PROGRESS, meta={"progress": progress})
    except backend_errors(task.backend) as error:
        logger.warning("result backend unreachable (%s): progress not recorded, cancel not looked for", error)


def backend_errors(backend: object) -> tuple[type[BaseException], ...]:
    """What a result backend raises when it cannot serve (Redis: down, OOM, read-only; a database: down)."""
    errors = (*getattr(backend, "connection_errors", ()), *getattr(backend, "channel_errors", ()), OSError)
    errors += (BackendError,)  # a backend that retries (result_backend_always_retry) gave up
    # A database out of reach (not a missing table: a bug, 500). Looked up, not imported: other
    # processes never load SQLAlchemy.
    database = sys.modules.get("celery.backends.database")
    if database is not None and isinstance(backend, database.DatabaseBackend):
        from sqlalchemy.exc import InterfaceError, OperationalError

        errors += (OperationalError, InterfaceError)
    # kombu counts KeyError among Redis connection errors (for its own consumer); here it
    # would turn a bug in a view into "backend unreachable".
    return tuple(error for error in errors if error is not KeyError)
