"""The Celery app of a Flask app: created by the factory, tasks run in its app context."""

from __future__ import annotations

from typing import Any

from celery import Celery, Task
from flask import Flask, appcontext_popped, appcontext_pushed, current_app, has_app_context

from app import kombu_poll  # noqa: F401  (patches kombu's event loop in every worker: see its docstring)
from app.results import PublisherRedisBackend, PublisherSentinelBackend

# Defaults a production user of RabbitMQ + Redis expects; the config file overrides any.
CELERY_DEFAULTS: dict[str, Any] = {
    # JSON only: a pickle message on the queue could run arbitrary code in the worker.
    "accept_content": ["json"],
    "task_serializer": "json",
    "result_serializer": "json",
    # A task is acknowledged only once done, so a worker that dies mid-task loses nothing.
    "task_acks_late": True,
    "task_reject_on_worker_lost": True,
    # Long tasks like the sample: don't let one worker hoard messages others could run.
    "worker_prefetch_multiplier": 1,
    "task_track_started": True,
    "task_soft_time_limit": 300,
    "task_time_limit": 330,
    "result_expires": 86400,
    "broker_connection_retry_on_startup": True,
    # The worker keeps the factory's logging (app/logs.py), whose lines carry task ids.
    "worker_hijack_root_logger": False,
    # Publisher confirms: POST answers 202 only once RabbitMQ holds the (persistent,
    # durable-queued) message. Options for other transports replace this one.
    "broker_transport_options": {"confirm_publish": True},
    "task_default_delivery_mode": "persistent",
    # A dependency that is down answers 503 in about 2 s instead of hanging the request.
    "broker_connection_timeout": 0.75,
    # One retry: enough to replace a pooled connection the broker closed.
    "task_publish_retry_policy": {"max_retries": 1, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2},
    "redis_socket_connect_timeout": 1,
    "redis_socket_timeout": 2,
    # Redis result backends that don't subscribe to every task sent (app/results.py).
    "override_backends": {
        scheme: f"{backend.__module__}:{backend.__name__}"
        for scheme, backend in [
            ("redis", PublisherRedisBackend),
            ("rediss", PublisherRedisBackend),
            ("sentinel", PublisherSentinelBackend),
        ]
    },
}


def celery_init_app(app: Flask) -> Celery:
    """Create the Celery app bound to ``app``'s settings and keep it in ``app.extensions``."""

    class FlaskTask(Task):  # type: ignore[misc]
        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            # Not super().__call__: the worker has already pushed this task's request,
            # and pushing a new one would hide its id from the task.
            with app.app_context():
                return self.run(*args, **kwargs)

    celery_app = Celery(app.import_name, task_cls=FlaskTask)
    celery_app.config_from_object({**CELERY_DEFAULTS, **app.config["CELERY"]})
    app.extensions["celery"] = celery_app
    appcontext_pushed.connect(_make_celery_current, sender=app)
    appcontext_popped.connect(_restore_outer_celery, sender=app)
    return celery_app


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
