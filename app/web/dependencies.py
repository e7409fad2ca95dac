"""The broker and the result backend as dependencies: when they are down, and saying so safely."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from urllib.parse import unquote, urlsplit

from celery import Celery
from celery.exceptions import BackendError
from werkzeug.exceptions import ServiceUnavailable

from app.fixes.amqp_blocked import BrokerBlocked
from app.observability.metrics import UNAVAILABLE
from app.tasks import CONFIRM_TIMEOUT

logger = logging.getLogger(__name__)


def backend_errors(celery_app: Celery) -> tuple[type[BaseException], ...]:
    """What the result backend raises when it cannot serve (Redis: down, OOM, read-only; a database: down)."""
    backend = celery_app.backend
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


def mask_secrets(text: str, celery_app: Celery) -> str:
    """``text`` with the passwords of the broker and backend URLs replaced by ``**``."""
    for setting in (celery_app.conf.broker_url, celery_app.conf.result_backend):
        for url in str(setting).split(";"):  # a failover list: "amqp://a//;amqp://b//"
            if password := urlsplit(url.strip()).password:
                # Libraries print the password decoded, URLs hold it percent-encoded.
                text = text.replace(password, "**").replace(unquote(password), "**")
    return text


@contextmanager
def dependency(name: str, errors: tuple[type[BaseException], ...], celery_app: Celery) -> Iterator[None]:
    """Turn ``errors`` raised inside into 503 Service Unavailable, logged without secrets."""
    try:
        yield
    except errors as error:
        logger.warning("%s unreachable: %s", name, _describe(error, celery_app))
        UNAVAILABLE.labels(name).inc()
        raise ServiceUnavailable(f"The {name} is unreachable; try again later.") from None


def readiness(celery_app: Celery) -> dict[str, str]:
    """For each dependency, 'ok' or why it cannot be reached (secrets masked)."""
    return {"broker": _probe(_ping_broker, celery_app), "result_backend": _probe(_ping_backend, celery_app)}


def _probe(ping: Callable[[Celery], object], celery_app: Celery) -> str:
    try:
        ping(celery_app)
    except BrokerBlocked as error:
        return f"blocked: {error}"
    except Exception as error:  # any failure means not ready; the reason is reported
        return f"unreachable: {_describe(error, celery_app)}"
    return "ok"


def _ping_broker(celery_app: Celery) -> None:
    # One attempt, bounded like every connection by broker_connection_timeout (CELERY_DEFAULTS).
    with celery_app.connection_for_write() as connection:
        connection.ensure_connection(max_retries=0)
        if connection.transport.driver_type == "amqp":
            # RabbitMQ under a resource alarm takes connections but blocks publishers: only
            # a publish tells. This one goes nowhere (the default exchange has no queue ""),
            # which RabbitMQ confirms at once; with confirms off it is not waited for.
            message = connection.default_channel.prepare_message(b"")
            connection.default_channel.basic_publish(message, "", "", confirm_timeout=CONFIRM_TIMEOUT)


def _ping_backend(celery_app: Celery) -> None:
    # The same read GET /task/<id> makes.
    celery_app.backend.task_result_exists("readiness-probe")


def _describe(error: BaseException, celery_app: Celery) -> str:
    return mask_secrets(f"{type(error).__name__}: {error}" if str(error) else type(error).__name__, celery_app)
