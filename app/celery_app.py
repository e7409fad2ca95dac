"""The Celery app of a Flask app: created by the factory, tasks run in its app context."""

from __future__ import annotations

from typing import Any

from celery import Celery, Task
from celery.worker.request import Request
from flask import Flask, appcontext_popped, appcontext_pushed, current_app, has_app_context

from app.fixes import (
    amqp_blocked,  # noqa: F401  (a connection RabbitMQ blocks fails at once: see its docstring)
    kombu_poll,  # noqa: F401  (patches kombu's event loop in every worker: see its docstring)
)
from app.observability.worker_health import HeartbeatFile
from app.runs import only_run
from app.settings.celery_defaults import celery_settings
from app.tasks import TRANSIENT_ERRORS, retry_countdown
from app.web.request_id import MESSAGE_HEADER, remember_for_task


def celery_init_app(app: Flask) -> Celery:
    """Create the Celery app bound to ``app``'s settings and keep it in ``app.extensions``."""

    class FlaskTask(Task):  # type: ignore[misc]
        Request = RequestWithId
        # STARTED is stored by only_run() once it knows this run goes ahead, as
        # task_track_started says: Celery's tracer would store it before, over another run's.
        track_started = False

        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            # Not super().__call__: the worker has already pushed this task's request,
            # and pushing a new one would hide its id from the task.
            with app.app_context(), only_run(self):
                try:
                    return self.run(*args, **kwargs)
                except TRANSIENT_ERRORS as error:
                    # Stored as RETRY until the last attempt, then raised: FAILURE with this cause.
                    countdown = retry_countdown(app.config, self.request.retries)
                    retries = app.config["RETRY_ATTEMPTS"] - 1
                    raise self.retry(exc=error, countdown=countdown, max_retries=retries) from error

    celery_app = Celery(app.import_name, task_cls=FlaskTask)
    celery_app.config_from_object(celery_settings(app.config["CELERY"]))
    celery_app.steps["consumer"].add(HeartbeatFile)  # the worker's health check reads it
    app.extensions["celery"] = celery_app
    appcontext_pushed.connect(_make_celery_current, sender=app)
    appcontext_popped.connect(_restore_outer_celery, sender=app)
    return celery_app


class RequestWithId(Request):  # type: ignore[misc]
    """As a worker receives a message, the request id it carries is remembered for the worker's own log lines.

    (app/web/request_id.py; Celery logs "received" and "succeeded" outside the task.)
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        remember_for_task(self.id, self._request_dict.get(MESSAGE_HEADER))


def _make_celery_current(app: Flask, **_: Any) -> None:
    """In an app context (views, tasks, `flask shell`), `shared_task`s use this app's Celery.

    Thread-local (``set_current``), never process-wide like Flask's example's
    ``set_default()``: a default would let a second app, created later, take over the
    tasks of a worker running in this process for the first (Celery's worker looks tasks
    up by name in the default app).
    """
    app.extensions["celery"].set_current()


def _restore_outer_celery(app: Flask, **_: Any) -> None:
    """When a nested app context ends, the outer one's Celery app is current again."""
    # The outer app may be any Flask app, without a Celery app of its own.
    if has_app_context() and (outer := current_app.extensions.get("celery")):
        outer.set_current()
