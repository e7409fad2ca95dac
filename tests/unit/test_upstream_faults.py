"""Upstream faults that app/fixes/amqp_blocked.py, redis_results.py and redis_waits.py work around, still there.

Each runs the upstream code without the workaround; when one fails, upstream fixed the fault and
its message says what can go (docs/upstream.md). The other fixes' tests sit beside their own.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import amqp  # type: ignore[import-untyped]
import fakeredis
import pytest
from celery import Celery, states
from celery.backends.redis import RedisBackend
from celery.exceptions import TimeoutError as CeleryTimeoutError
from celery.result import AsyncResult
from kombu import Connection
from kombu.transport import pyamqp
from redis import Redis

from tests.unit.conftest import subscribe_after_the_first_read


def test_upstream_a_blocked_connection_is_still_ignored() -> None:
    """kombu gives py-amqp no on_blocked callback, and without one py-amqp's connection.blocked does nothing."""
    options: dict[str, Any] = {}

    class PyAmqpConnection(amqp.Connection):  # type: ignore[misc]
        """py-amqp's own class (kombu's subclass is the patched one), not connecting."""

        def __init__(self, **given: Any) -> None:
            options.update(given)
            super().__init__(**given)

        def connect(self, callback: object = None) -> None:
            """Nothing listens: the options kombu passes are what counts."""

    transport = pyamqp.Transport(Connection("amqp://guest:guest@127.0.0.1:1//"))
    transport.Connection = PyAmqpConnection
    connection = transport.establish_connection()
    channel = connection.Channel(connection, 1)
    connection.channels[1] = channel
    fixed = (
        "upstream fixed the blocked connection ({}): remove app/fixes/amqp_blocked.py once a publish under a "
        "resource alarm fails at once without it (tests/integration/test_broker_alarm.py; docs/upstream.md)"
    )
    assert options.get("on_blocked") is None, fixed.format("kombu now gives py-amqp an on_blocked callback")
    outcome = (connection._on_blocked(), (connection.channels or {}).get(1) is channel)
    assert outcome == (None, True), fixed.format(f"py-amqp acts on it without a callback: {outcome}")


@pytest.fixture
def redis() -> Redis:
    """A FakeRedis that runs Lua scripts (fakeredis with lupa)."""
    return fakeredis.FakeRedis()


@pytest.fixture
def celerys_backend(redis: Redis) -> Iterator[RedisBackend]:
    """Celery's own Redis result backend, on `redis`."""
    backend = RedisBackend(app=Celery(set_as_current=False), url="redis://127.0.0.1:1/0")
    backend.client = redis
    yield backend
    backend.result_consumer.stop()


def test_upstream_sending_a_task_still_subscribes_to_its_result(celerys_backend: RedisBackend, redis: Redis) -> None:
    """Celery's RedisBackend.on_task_call subscribes the sender to the task's result channel, waiting or not."""
    celerys_backend.on_task_call(None, "task-1")
    channel = celerys_backend.get_key_for_task("task-1")
    subscribers = dict(redis.pubsub_numsub(channel))
    assert subscribers == {channel: 1}, (
        f"upstream fixed Celery's RedisBackend.on_task_call: sending a task left {subscribers} subscribed "
        "to its result: remove on_task_call from app/fixes/redis_results.py (docs/upstream.md)"
    )


@pytest.mark.parametrize(
    "finished", ["a-failure", "a-success-stored-between-its-read-and-its-write"], ids=lambda finished: finished
)
def test_upstream_a_later_write_still_replaces_a_finished_result(
    celerys_backend: RedisBackend, redis: Redis, monkeypatch: pytest.MonkeyPatch, finished: str
) -> None:
    """Celery's own _store_result reads, then writes: it replaces a FAILURE, and a SUCCESS stored in between."""
    other_worker = RedisBackend(app=Celery(set_as_current=False), url="redis://127.0.0.1:1/0")
    other_worker.client = redis
    if finished == "a-failure":
        other_worker.store_result("task-1", ValueError("first run"), states.FAILURE)
    else:
        read = celerys_backend._get_task_meta_for

        def read_then_the_other_run_ends(task_id: str) -> Any:
            meta = read(task_id)
            other_worker.store_result(task_id, "first run", states.SUCCESS)
            return meta

        monkeypatch.setattr(celerys_backend, "_get_task_meta_for", read_then_the_other_run_ends)
    celerys_backend.store_result("task-1", None, states.STARTED)
    state = other_worker.get_task_meta("task-1")["status"]
    assert state == states.STARTED, (
        f"upstream fixed Celery's KeyValueStoreBackend._store_result: {finished} stayed {state}: remove "
        "_store_result, _set and the Lua script from app/fixes/redis_results.py (docs/upstream.md)"
    )


def test_upstream_get_still_misses_a_result_stored_before_redis_subscribes(
    celerys_backend: RedisBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Celery's get() reads once, then only listens: a result stored after that read, before SUBSCRIBE ran, is lost."""
    result = AsyncResult("task-1", backend=celerys_backend, app=celerys_backend.app)

    def finish() -> None:
        celerys_backend.store_result("task-1", "done", states.SUCCESS)

    subscribe_after_the_first_read(celerys_backend, monkeypatch, finish)
    try:
        received = result.get(timeout=2)  # the fault waits out any timeout
    except CeleryTimeoutError:
        return
    pytest.fail(
        f"upstream fixed Celery's ResultConsumer: get() received {received!r}, stored between its read and its "
        "subscription: remove app/fixes/redis_waits.py and its use in redis_results.py (docs/upstream.md)"
    )
