"""The Celery app of a Flask app: created by the factory, tasks run in its app context."""

from __future__ import annotations

import functools
import logging
from typing import Any

from celery import Celery, Task, states, uuid
from flask import Flask, appcontext_popped, appcontext_pushed, current_app, has_app_context
from kombu.exceptions import OperationalError

from app.fixes import amqp_blocked, kombu_poll  # noqa: F401  (patches, applied on import: see their docstrings)
from app.observability.logs import RequestWithId, current_client
from app.observability.worker_health import HeartbeatFile
from app.settings.celery_defaults import celery_settings
from app.tasking import TRANSIENT_ERRORS
from app.tasking.runs import only_run
from app.web.auth import owner_record
from app.web.unfinished_tasks import Slot

logger = logging.getLogger(__name__)


def celery_init_app(app: Flask) -> Celery:
    """Create the Celery app bound to ``app``'s settings and keep it in ``app.extensions``."""

    class FlaskTask(Task):  # type: ignore[misc]
        Request = RequestWithId
        Strategy = "app.fixes.malformed_messages:strategy"
        # STARTED is stored by only_run() once it knows this run goes ahead, as
        # task_track_started says: Celery's tracer would store it before, over another run's.
        track_started = False
        # Celery's own retries (a task option each; a task may set its own): RETRY with the
        # attempt until the last, then FAILURE with the last cause. Backoff with full jitter.
        autoretry_for = TRANSIENT_ERRORS
        max_retries = app.config["RETRY_ATTEMPTS"] - 1
        retry_backoff = app.config["RETRY_BACKOFF_SECONDS"]
        retry_backoff_max = app.config["RETRY_BACKOFF_MAX_SECONDS"]
        retry_jitter = True

        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            # Not super().__call__: the worker has already pushed this task's request,
            # and pushing a new one would hide its id from the task.
            with app.app_context(), only_run(self):
                return self.run(*args, **kwargs)

        def apply_async(
            self,
            args: Any = None,
            kwargs: Any = None,
            task_id: str | None = None,
            slot: Slot | None = None,
            **options: Any,
        ) -> Any:
            """Record the id (PENDING) before sending: Celery says PENDING for any id; GET tells queued from unknown.

            Once, not retried: a stalled backend fails in one socket timeout. A message sent
            again (a retry, a held-back duplicate) leaves the run's state (app/fixes/final_states.py).
            A ``slot`` among its client's started tasks (app/web/unfinished_tasks.py) is taken in the same call.
            """
            task_id = task_id or uuid()
            # Whose it is (app/web/auth.py), stored before it can be read: on Redis, in the id record's own call.
            owner = {owner_record(task_id): client} if (client := current_client()) is not None else {}
            # The factory's Redis backends (app/fixes/redis_results.py), as limits.init_app tells them.
            if (record_sent := getattr(self.backend, "record_sent", None)) is not None:
                record = functools.partial(record_sent, task_id, owner)
                if slot:
                    slot.take(record)
                else:
                    record()
            else:  # once: Celery's backends retry a write only with result_backend_always_retry (off)
                if owner:
                    self.backend.store_result(*owner.popitem(), states.SUCCESS)
                self.backend.store_result(task_id, None, states.PENDING)
            try:
                sent = super().apply_async(args, kwargs, task_id=task_id, **options)
            except OperationalError:
                # Refused (503), yet the broker may hold the message: RabbitMQ reads a publish
                # before it blocks the connection (app/fixes/amqp_blocked.py), a stalled broker
                # may deliver what it never confirmed. Stored REVOKED, it never runs; a task
                # already running (a retry, a held-back duplicate sent again) is left alone.
                if self.backend.get_state(task_id) == states.PENDING:
                    self.backend.mark_as_revoked(task_id, "refused: the broker did not accept it")
                raise
            logger.info("queued %s[%s]", self.name, task_id)
            return sent

    celery_app = Celery(app.import_name, task_cls=FlaskTask)
    celery_app.config_from_object(celery_settings(app.config["CELERY"]))
    if celery_app.conf.task_serializer == "auth":  # message signing (app/settings/security.py checked its settings)
        # Given again: Celery's setup_security() passes its own default digest over security_digest.
        celery_app.setup_security(digest=celery_app.conf.security_digest)
    celery_app.steps["consumer"].add(HeartbeatFile)  # the worker's health check reads it
    app.extensions["celery"] = celery_app
    appcontext_pushed.connect(_make_celery_current, sender=app)
    appcontext_popped.connect(_restore_outer_celery, sender=app)
    return celery_app


def _make_celery_current(app: Flask, **_: Any) -> None:
    """In an app context (views, tasks, `flask shell`), `shared_task`s use this app's Celery.

    Thread-local, not Flask's example's ``set_default()``: a second app, created later,
    would take over the tasks of a worker running in this process for the first.
    """
    app.extensions["celery"].set_current()


def _restore_outer_celery(app: Flask, **_: Any) -> None:
    """When a nested app context ends, the outer one's Celery app is current again."""
    # The outer app may be any Flask app, without a Celery app of its own.
    if has_app_context() and (outer := current_app.extensions.get("celery")):
        outer.set_current()
