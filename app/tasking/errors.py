"""The errors a task is retried for, and those a result backend raises when it cannot serve."""

from __future__ import annotations

import sys

from celery.exceptions import BackendError


class TransientError(Exception):
    """A failure worth another try later (a dependency briefly away): raise it from a task to be retried."""


class ClientError(Exception):
    """A failure whose message is meant for the client: GET /task/<id> shows it (other errors' text: the logs only)."""


# What any task of the factory's Celery app is retried for (celery_app.FlaskTask).
TRANSIENT_ERRORS = (TransientError, ConnectionError, TimeoutError)


def backend_errors(backend: object) -> tuple[type[BaseException], ...]:
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
