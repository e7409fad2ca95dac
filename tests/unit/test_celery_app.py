"""The Celery app the factory creates and its app-context Task (app/celery_app.py)."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, tzinfo
from pathlib import Path
from types import SimpleNamespace

import pytest
from celery import Task, states
from celery.backends import database as database_backend
from celery.backends.redis import RedisBackend
from celery.exceptions import Retry, TaskRevokedError
from celery.signals import task_retry
from celery.utils import time as celery_time
from celery.worker.consumer import Connection, Consumer
from flask import Flask, g
from kombu.exceptions import OperationalError
from kombu.utils import functional as kombu_functional

from app import create_app
from app.fixes.database_results import ReachableFirstDatabaseBackend
from app.fixes.redis_results import PublisherRedisBackend, PublisherSentinelBackend
from app.observability.logs import RequestWithId
from app.observability.worker_health import HeartbeatFile
from app.tasks import sample_task
from app.web.auth import owner_record
from tests.tasks import context_probe, failing_task, flaky_task
from tests.unit.conftest import EAGER, IN_MEMORY_CONFIG, TOKENS, TokenClient, WriteConfig


def test_safe_defaults_apply_and_the_file_overrides_them(write_config: WriteConfig) -> None:
    """JSON only, late acks, confirms, limits and expiry hold unless the file says otherwise."""
    celery = {**IN_MEMORY_CONFIG["celery"], "task_time_limit": 7}
    write_config({**IN_MEMORY_CONFIG, "sample_task_max_seconds": 6, "celery": celery})  # a task the limit lets end
    conf = create_app().extensions["celery"].conf
    expected = {
        "accept_content": ["json"],
        "task_serializer": "json",
        "result_serializer": "json",
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_soft_time_limit": 300,
        "task_time_limit": 7,
        "result_expires": 86400,
    }
    assert {key: conf[key] for key in expected} == expected


REDIS_BROKER_OPTIONS = {
    "socket_connect_timeout": 1,
    "socket_timeout": 2,
    "unacked_restore_interval": 1,
    "unacked_restore_throttle": 1,
}


@pytest.mark.parametrize(
    ("broker_url", "transport_options", "delivery_mode", "publish_retries"),
    [
        ("amqp://guest@127.0.0.1:1//", {"confirm_publish": True}, "persistent", 1),
        ("pyamqp://127.0.0.1:1//;amqp://127.0.0.1:2//", {"confirm_publish": True}, "persistent", 1),
        ("redis://127.0.0.1:1/0", REDIS_BROKER_OPTIONS, 2, 0),
        ("rediss://127.0.0.1:1/0", REDIS_BROKER_OPTIONS, 2, 0),
        ("sentinel://127.0.0.1:1", REDIS_BROKER_OPTIONS, 2, 0),
        ("memory://", {}, 2, 1),
    ],
    ids=["amqp", "failover-list", "redis", "rediss", "sentinel", "memory"],
)
def test_each_broker_gets_its_own_defaults(
    write_config: WriteConfig, broker_url: str, transport_options: dict, delivery_mode: str | int, publish_retries: int
) -> None:
    """RabbitMQ: publisher confirms, persistent messages; Redis: socket timeouts, a restore sweep every second."""
    write_config({**IN_MEMORY_CONFIG, "celery": {**IN_MEMORY_CONFIG["celery"], "broker_url": broker_url}})
    conf = create_app().extensions["celery"].conf
    assert conf.broker_transport_options == transport_options
    assert conf.task_default_delivery_mode == delivery_mode  # 2 (persistent) is Celery's own default
    assert conf.task_publish_retry_policy["max_retries"] == publish_retries


def test_the_files_transport_options_are_merged_into_the_brokers(write_config: WriteConfig) -> None:
    """Setting `visibility_timeout` keeps the socket timeouts; a default set in the file is replaced."""
    options = {"visibility_timeout": 8, "socket_timeout": 5}
    celery = {**IN_MEMORY_CONFIG["celery"], "broker_url": "redis://127.0.0.1:1/0", "broker_transport_options": options}
    write_config({**IN_MEMORY_CONFIG, "celery": celery})
    conf = create_app().extensions["celery"].conf
    assert conf.broker_transport_options == {**REDIS_BROKER_OPTIONS, **options}


@pytest.mark.parametrize(
    ("scheme", "backend_class"),
    [("redis", PublisherRedisBackend), ("rediss", PublisherRedisBackend), ("sentinel", PublisherSentinelBackend)],
    ids=["redis", "rediss", "sentinel"],
)
def test_redis_result_backends_do_not_subscribe_on_send(
    write_config: WriteConfig, scheme: str, backend_class: type
) -> None:
    """A Redis result backend sends without subscribing (nothing listens on port 1: Celery's would fail)."""
    celery = {**IN_MEMORY_CONFIG["celery"], "result_backend": f"{scheme}://127.0.0.1:1/0"}
    if scheme == "rediss":
        celery["redis_backend_use_ssl"] = {"ssl_cert_reqs": "required"}
    write_config({**IN_MEMORY_CONFIG, "celery": celery})
    backend = create_app().extensions["celery"].backend
    assert type(backend) is backend_class
    assert backend.on_task_call(None, "some-task-id") == {}
    assert backend.result_consumer.subscribed_to == set()


def test_the_file_can_restore_celerys_redis_backend(write_config: WriteConfig) -> None:
    """`override_backends: {}` under `celery:` gives Celery's own Redis backend back."""
    celery = {**IN_MEMORY_CONFIG["celery"], "result_backend": "redis://127.0.0.1:1/0", "override_backends": {}}
    write_config({**IN_MEMORY_CONFIG, "celery": celery})
    assert type(create_app().extensions["celery"].backend) is RedisBackend


POSTGRESQL_TIMEOUT = {"connect_timeout": 2}


@pytest.mark.parametrize(
    ("result_backend", "connect_args"),
    [
        ("db+postgresql+psycopg://u:p@127.0.0.1:1/results", POSTGRESQL_TIMEOUT),
        ("db+postgresql+psycopg2://u:p@127.0.0.1:1/results", POSTGRESQL_TIMEOUT),
        ("db+postgresql://u:p@127.0.0.1:1/results", POSTGRESQL_TIMEOUT),
        ("db+postgresql+pg8000://u:p@127.0.0.1:1/results", None),
        ("db+sqlite:///results.sqlite", None),
    ],
    ids=["psycopg", "psycopg2", "default-driver", "pg8000", "sqlite"],
)
def test_database_result_backends_get_their_own_defaults(
    write_config: WriteConfig, result_backend: str, connect_args: dict | None
) -> None:
    """Reachability checked first, no retries, one backend per process; PostgreSQL on libpq: 2 s connect timeout."""
    write_config({**IN_MEMORY_CONFIG, "celery": {**IN_MEMORY_CONFIG["celery"], "result_backend": result_backend}})
    celery_app = create_app().extensions["celery"]
    conf = celery_app.conf
    assert type(celery_app.backend) is ReachableFirstDatabaseBackend
    assert (conf.result_backend_always_retry, conf.database_create_tables_at_setup) == (False, False)
    assert conf.result_backend_thread_safe is True
    expected = {"pool_pre_ping": True, "pool_recycle": 3600}  # Celery's own, kept
    if connect_args is not None:
        expected["connect_args"] = connect_args
    assert conf.database_engine_options == expected


def test_other_result_backends_keep_celerys_database_settings(app: Flask) -> None:
    """The database defaults apply to `db+` URLs only."""
    conf = app.extensions["celery"].conf
    assert (conf.result_backend_always_retry, conf.get("result_backend_thread_safe", False)) == (False, False)
    assert conf.database_create_tables_at_setup is True
    assert conf.database_engine_options == {"pool_pre_ping": True, "pool_recycle": 3600}


def test_the_files_engine_options_are_merged_into_the_defaults(write_config: WriteConfig) -> None:
    """Setting `sslmode` keeps the connect timeout; the file's other settings win."""
    celery = {
        **IN_MEMORY_CONFIG["celery"],
        "result_backend": "db+postgresql+psycopg://u:p@127.0.0.1:1/results",
        "result_backend_always_retry": True,
        "database_engine_options": {"pool_recycle": 60, "connect_args": {"sslmode": "require"}},
    }
    write_config({**IN_MEMORY_CONFIG, "celery": celery})
    conf = create_app().extensions["celery"].conf
    assert conf.result_backend_always_retry is True
    assert conf.database_engine_options == {
        "pool_pre_ping": True,
        "pool_recycle": 60,
        "connect_args": {"connect_timeout": 2, "sslmode": "require"},
    }


def test_every_worker_keeps_a_heartbeat_once_connected_to_the_broker(app: Flask) -> None:
    """A worker's consumer of the factory's Celery app starts the heartbeat step, after its broker connection.

    Before it, a worker that cannot reach its broker would look healthy (worker_health.py) for 10 s.
    """
    worker = SimpleNamespace(use_eventloop=True)  # the worker around the consumer, as far as building it goes
    consumer = Consumer(on_task_request=None, app=app.extensions["celery"], controller=worker)  # built, not started
    started = [type(step) for step in consumer.steps]  # in the order it starts them
    assert started.index(HeartbeatFile) > started.index(Connection)


def test_task_runs_inside_the_app_context(app: Flask) -> None:
    """A task sees current_app's config and keeps its own request id."""
    result = app.extensions["celery"].tasks[context_probe.name].apply_async(task_id="probe-1")
    seen = result.get()
    assert seen["has_app_context"] is True
    assert seen["config_file"] == app.config["CONFIG_FILE"]
    assert seen["task_id"] == "probe-1"


def test_app_context_is_torn_down_after_each_task(app: Flask) -> None:
    """What the app sets up per context (closed by teardown_appcontext) is released per task."""
    torn_down: list[str | None] = []
    app.teardown_appcontext(lambda error: torn_down.append(g.get("probe_task_id")))
    task = app.extensions["celery"].tasks[context_probe.name]
    first, second = task.delay().id, task.delay().id
    assert torn_down == [first, second]


def test_shared_tasks_use_the_celery_app_of_the_active_context(write_config: WriteConfig) -> None:
    """Inside an app's context, `shared_task` proxies resolve to that app's own Celery app."""
    write_config()
    first, second = create_app(), create_app()
    for app in (first, second, first):
        with app.app_context():
            assert sample_task.app is app.extensions["celery"]


def test_outer_context_gets_its_celery_back_after_a_nested_one(write_config: WriteConfig) -> None:
    """A nested context of another app ends: the outer app's Celery app is current again."""
    write_config()
    outer, inner = create_app(), create_app()
    with outer.app_context():
        with inner.app_context():
            assert sample_task.app is inner.extensions["celery"]
        assert sample_task.app is outer.extensions["celery"]


def test_task_keyword_arguments_reach_the_task(app: Flask) -> None:
    """The app-context wrapper passes keyword arguments on."""
    with pytest.raises(ValueError, match=r"^by keyword$"):
        app.extensions["celery"].tasks[failing_task.name].apply(kwargs={"message": "by keyword"})


def test_other_flask_apps_are_left_alone(app: Flask) -> None:
    """A Flask app without Celery, in the same process, nests with ours either way round."""
    plain = Flask("plain")
    with plain.app_context(), app.app_context():
        assert sample_task.app is app.extensions["celery"]
    with app.app_context(), plain.app_context():
        assert sample_task.app is app.extensions["celery"]


def test_every_task_of_the_factory_remembers_the_request_id_of_its_messages(app: Flask) -> None:
    """The worker builds each task's requests as RequestWithId: the sample task's, and any other task's of the app."""
    celery_app = app.extensions["celery"]
    assert celery_app.tasks[sample_task.name].Request is RequestWithId
    assert celery_app.tasks[failing_task.name].Request is RequestWithId


@pytest.mark.parametrize(
    ("failures", "state", "result"),
    [(2, "SUCCESS", 3), (4, "SUCCESS", 5), (5, "FAILURE", "dependency away (attempt 5)")],
    ids=["recovers", "recovers-at-the-last-attempt", "fails-after-the-last-attempt"],
)
def test_a_transient_error_is_retried_up_to_the_configured_attempts(
    write_config: WriteConfig, failures: int, state: str, result: object
) -> None:
    """Five attempts by default: TransientError is retried until one succeeds or the last fails with its cause."""
    write_config()
    app = create_app({"CELERY": {**EAGER, "task_eager_propagates": False}})
    outcome = app.extensions["celery"].tasks[flaky_task.name].delay(failures)
    assert outcome.state == state
    assert (str(outcome.result) if state == "FAILURE" else outcome.result) == result


@pytest.mark.parametrize(
    ("top", "waits"), [(True, [2, 4, 8, 10]), (False, [0, 0, 0, 0])], ids=["longest-draw", "shortest-draw"]
)
def test_each_retry_waits_a_backoff_drawn_up_to_its_doubling_ceiling(
    write_config: WriteConfig, monkeypatch: pytest.MonkeyPatch, top: bool, waits: list[int]
) -> None:
    """The n-th retry waits a random time from 0 to retry_backoff_seconds * 2**n, at most the configured maximum."""
    monkeypatch.setattr(celery_time.random, "randrange", lambda stop: stop - 1 if top else 0)
    write_config({**IN_MEMORY_CONFIG, "retry_backoff_seconds": 2, "retry_backoff_max_seconds": 10})
    app = create_app({"CELERY": {**EAGER, "task_eager_propagates": False}})
    seen: list[float] = []

    def record(sender: object, reason: Retry, **details: object) -> None:
        seen.append(reason.when)

    task_retry.connect(record, weak=False)
    try:
        assert app.extensions["celery"].tasks[flaky_task.name].delay(4).result == 5
    finally:
        task_retry.disconnect(record)
    assert seen == waits


def test_a_message_sent_is_recorded_first_so_its_id_is_known(
    write_config: WriteConfig, caplog: pytest.LogCaptureFixture
) -> None:
    """`.delay()` of any task records its id before publishing it: a queued task is known, an unknown id is not."""
    caplog.set_level(logging.INFO, logger="app.celery_app")
    write_config()
    celery_app = create_app().extensions["celery"]
    task_id = celery_app.tasks[failing_task.name].delay("never run").id
    assert celery_app.AsyncResult(task_id).state == states.PENDING
    assert celery_app.AsyncResult(task_id).exists()
    assert not celery_app.AsyncResult(str(uuid.uuid4())).exists()
    assert f"queued {failing_task.name}[{task_id}]" in caplog.messages


def test_a_message_the_broker_refused_is_stored_as_revoked(
    write_config: WriteConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The broker refuses the message: the id is stored REVOKED (a worker drops it if it comes), the error raised."""
    write_config()
    celery_app = create_app().extensions["celery"]

    def refuse(*args: object, **kwargs: object) -> None:
        raise OperationalError("broker unreachable")

    monkeypatch.setattr(Task, "apply_async", refuse)  # Celery's own publish, below the factory's
    with pytest.raises(OperationalError, match=r"^broker unreachable$"):
        celery_app.tasks[failing_task.name].apply_async(("x",), task_id="refused-id")
    refused = celery_app.AsyncResult("refused-id")
    assert (refused.state, repr(refused.result)) == (
        "REVOKED",
        repr(TaskRevokedError("refused: the broker did not accept it")),
    )


def test_a_message_sent_again_while_the_task_runs_keeps_its_record(
    write_config: WriteConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A retry or a held-back duplicate whose publish fails leaves the running task's state (no forget)."""
    write_config()
    celery_app = create_app().extensions["celery"]
    celery_app.backend.store_result("running-id", {"progress": 0.5}, "PROGRESS")

    def refuse(*args: object, **kwargs: object) -> None:
        raise OperationalError("broker unreachable")

    monkeypatch.setattr(Task, "apply_async", refuse)
    with pytest.raises(OperationalError):
        celery_app.tasks[failing_task.name].apply_async(("x",), task_id="running-id")
    assert celery_app.AsyncResult("running-id").state == "PROGRESS"


@pytest.mark.parametrize("tokens", [TOKENS, {}], ids=["with-a-client", "without-authentication"])
def test_the_records_written_before_sending_are_tried_once(
    write_config: WriteConfig, monkeypatch: pytest.MonkeyPatch, tokens: dict
) -> None:
    """A Redis result backend that refuses: POST answers 503 without one retry of the owner or the id record."""
    write_config(
        {**IN_MEMORY_CONFIG, "celery": {**IN_MEMORY_CONFIG["celery"], "result_backend": "redis://127.0.0.1:1/0"}}
    )
    app = create_app(tokens)
    app.test_client_class = TokenClient
    pauses: list[float] = []
    monkeypatch.setattr(kombu_functional, "sleep", pauses.append)  # the waits between Celery's retries of a write
    response = app.test_client().post("/task/")
    assert (response.status_code, pauses) == (503, [])


def test_an_owner_record_expires_with_its_tasks_records(
    write_config: WriteConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The record naming a task's client is a finished one: the database backend's cleanup deletes it once expired."""
    celery = {**IN_MEMORY_CONFIG["celery"], "result_backend": f"db+sqlite:///{tmp_path}/results.db"}
    write_config({**IN_MEMORY_CONFIG, "celery": celery})
    app = create_app({"CELERY": EAGER, **TOKENS})
    app.test_client_class = TokenClient
    task_id = app.test_client().post("/task/").json["task_id"]
    backend = app.extensions["celery"].backend
    assert backend.task_result_exists(owner_record(task_id))

    class TwoDaysLater(datetime):
        @classmethod
        def now(cls, tz: tzinfo | None = None) -> TwoDaysLater:
            return cls.fromtimestamp(datetime.now(tz).timestamp() + 2 * 86400, tz)

    monkeypatch.setattr(database_backend, "datetime", TwoDaysLater)  # past result_expires (a day)
    backend.cleanup()
    assert not backend.task_result_exists(owner_record(task_id))
    assert not backend.task_result_exists(task_id)
