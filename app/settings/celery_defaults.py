"""The Celery settings the factory starts from: safe defaults, then each broker's own, then the file's."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from celery.app.defaults import DEFAULTS as CELERY_OWN_DEFAULTS

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
    # Results keep the task's attempt count (`retries`): GET shows which one failed while the next waits.
    "result_extended": True,
    "task_soft_time_limit": 300,
    "task_time_limit": 330,
    "result_expires": 86400,
    "broker_connection_retry_on_startup": True,
    # The worker keeps the factory's logging (app/observability/logs.py), whose lines carry task ids.
    "worker_hijack_root_logger": False,
    # A dependency that is down answers 503 in about 2 s instead of hanging the request
    # (RabbitMQ; Redis as broker ignores both: see BROKER_DEFAULTS).
    "broker_connection_timeout": 0.75,
    # One retry: enough to replace a pooled connection the broker closed.
    "task_publish_retry_policy": {"max_retries": 1, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2},
    "redis_socket_connect_timeout": 1,
    "redis_socket_timeout": 2,
    # Celery's result backends with the workarounds of app/fixes/ (each module says which); named,
    # not imported: only a database backend's users load SQLAlchemy.
    "override_backends": {
        "redis": "app.fixes.redis_results:PublisherRedisBackend",
        "rediss": "app.fixes.redis_results:PublisherRedisBackend",
        "sentinel": "app.fixes.redis_results:PublisherSentinelBackend",
        "db": "app.fixes.database_results:ReachableFirstDatabaseBackend",
        "file": "app.fixes.file_results:WholeRecordFilesystemBackend",
        "cache": "app.fixes.final_states:FinalCacheBackend",
    },
}


# Defaults that mean something for one kind of broker only, chosen by the broker URL's scheme.
BROKER_DEFAULTS: dict[str, dict[str, Any]] = {
    "amqp": {
        # Publisher confirms: POST answers 202 only once RabbitMQ holds the (persistent) message.
        "broker_transport_options": {"confirm_publish": True},
        "task_default_delivery_mode": "persistent",
    },
    "redis": {
        "broker_transport_options": {
            # The Redis transport ignores broker_connection_timeout and confirm_timeout:
            # without these a stalled broker holds POST until it answers again.
            "socket_connect_timeout": 1,
            "socket_timeout": 2,
            # Late acks on Redis: a dead worker's task comes back once visibility_timeout has
            # passed, found by a sweep kombu runs far less often by default.
            "unacked_restore_interval": 1,
            "unacked_restore_throttle": 1,
        },
        # No retry: redis-py replaces a pooled connection the broker closed by itself, and
        # after a timeout a retry only waits longer.
        "task_publish_retry_policy": {"max_retries": 0},
    },
}
_BROKER_KIND = {
    **dict.fromkeys(("amqp", "amqps", "pyamqp"), "amqp"),
    **dict.fromkeys(("redis", "rediss", "sentinel"), "redis"),
}


# Celery's SQLAlchemy result backend (`db+<dialect>[+<driver>]://...`): a stalled database
# answers 503 in about 2 s instead of holding requests for minutes (the template's docs/reliability.md).
DATABASE_BACKEND_DEFAULTS: dict[str, Any] = {
    # Celery retries each call of this backend alone, each try waiting out the connect timeout.
    "result_backend_always_retry": False,
    # Tables checked on the first call, inside a request's error handling, not when the backend is made.
    "database_create_tables_at_setup": False,
    # One backend per process, not per thread: each new one checks the tables on its first
    # call (Flask's development server runs each request in a thread of its own).
    "result_backend_thread_safe": True,
    "database_engine_options": dict(CELERY_OWN_DEFAULTS["database_engine_options"]),
}
# PostgreSQL through libpq (psycopg, psycopg2, SQLAlchemy's default): a connection to a database
# that accepts it but never answers fails after this many seconds, not minutes. The web process
# opens a connection per call (Celery's NullPool outside forked workers), so this bounds each.
LIBPQ_CONNECT_ARGS: dict[str, Any] = {"connect_timeout": 2}


def celery_settings(file_settings: Mapping[str, Any]) -> dict[str, Any]:
    """CELERY_DEFAULTS, then the broker's and the result backend's own defaults, then the file's settings.

    The file's broker_transport_options and database_engine_options (and their connect_args) are merged
    into the defaults key by key: setting `visibility_timeout` does not drop the socket timeouts.
    """
    # The scheme of a failover list (`redis://a;amqp://b`) is its first URL's.
    scheme = urlsplit(str(file_settings.get("broker_url") or "").strip()).scheme
    broker = BROKER_DEFAULTS.get(_BROKER_KIND.get(scheme.split("+")[0], ""), {})
    backend = urlsplit(str(file_settings.get("result_backend") or "")).scheme
    database = DATABASE_BACKEND_DEFAULTS if backend.startswith("db+") else {}
    settings = {**CELERY_DEFAULTS, **broker, **database, **file_settings}
    in_file = file_settings.get("broker_transport_options") or {}
    if transport_options := {**broker.get("broker_transport_options", {}), **in_file}:
        settings["broker_transport_options"] = transport_options
    if database:
        dialect, _, driver = backend.removeprefix("db+").partition("+")
        libpq = LIBPQ_CONNECT_ARGS if dialect == "postgresql" and driver in ("", "psycopg", "psycopg2") else {}
        in_file = file_settings.get("database_engine_options") or {}
        engine_options = {**database["database_engine_options"], **in_file}
        if connect_args := {**libpq, **in_file.get("connect_args", {})}:
            engine_options["connect_args"] = connect_args
        settings["database_engine_options"] = engine_options
    return settings
