"""The broker and the result backend as dependencies: when they are down, and saying so safely.

And the probes for orchestrators and load balancers: ``/healthz`` and ``/readyz``; what
is down, and why, only on the internal port (``internal_port``, with ``/metrics``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

from celery import Celery
from flask import Blueprint, current_app
from kombu.exceptions import OperationalError
from werkzeug.exceptions import ServiceUnavailable

from app.fixes.amqp_blocked import BrokerBlocked
from app.observability.metrics import UNAVAILABLE, internal
from app.tasking import backend_errors

# A broker that took the connection but stopped answering must not hang a request: wait
# this long for RabbitMQ's publisher confirm, then 503 (the Redis transport has socket
# timeouts instead: BROKER_DEFAULTS).
CONFIRM_TIMEOUT = 0.5

logger = logging.getLogger(__name__)
bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> dict[str, str]:
    """Liveness: the process serves requests. It checks no dependency on purpose."""
    return {"status": "ok"}


@bp.get("/readyz")
def readyz() -> tuple[dict[str, Any], int]:
    """Readiness: can the broker and the result backend be reached right now? Why not: on the internal port only."""
    checks = readiness(current_app.extensions["celery"])
    ready = all(state == "ok" for state in checks.values())
    body = {"status": "ok" if ready else "unavailable"}
    return {**body, "checks": checks} if internal() else body, 200 if ready else 503


def mask_secrets(text: str, celery_app: Celery) -> str:
    """``text`` with the passwords of the broker and backend URLs replaced by ``**``."""
    for setting in (celery_app.conf.broker_url, celery_app.conf.result_backend):
        for url in str(setting).split(";"):  # a failover list: "amqp://a//;amqp://b//"
            if password := urlsplit(url.strip()).password:
                # Libraries print the password decoded, URLs hold it percent-encoded.
                text = text.replace(password, "**").replace(unquote(password), "**")
    return text


@contextmanager
def dependency(name: Literal["broker", "result backend"]) -> Iterator[None]:
    """Turn the ``"broker"``'s or the ``"result backend"``'s errors raised inside into 503, logged without secrets."""
    celery_app = current_app.extensions["celery"]
    errors = (OperationalError,) if name == "broker" else backend_errors(celery_app.backend)
    try:
        yield
    except errors as error:
        raise unavailable(name, _describe(error, celery_app)) from None


def unavailable(name: str, why: str) -> ServiceUnavailable:
    """The 503 of a dependency out of reach, ``why`` logged, counted by the dependency's name."""
    logger.warning("%s unreachable: %s", name, why)
    UNAVAILABLE.labels(name).inc()
    return ServiceUnavailable(f"The {name} is unreachable; try again later.")


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
            channel = connection.default_channel
            channel.basic_publish(channel.prepare_message(b""), "", "", confirm_timeout=CONFIRM_TIMEOUT)


def _ping_backend(celery_app: Celery) -> None:
    # The same read GET /task/<id> makes.
    celery_app.backend.task_result_exists("readiness-probe")


def _describe(error: BaseException, celery_app: Celery) -> str:
    return mask_secrets(f"{type(error).__name__}: {error}" if str(error) else type(error).__name__, celery_app)
