"""get() and join() on the factory's Redis backend see a result stored as they subscribe (app/fixes/redis_waits.py)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import fakeredis
import pytest
from celery import states
from celery.backends import base
from celery.backends.redis import RedisBackend
from celery.result import AsyncResult, GroupResult

from app import create_app
from app.fixes import redis_waits
from app.fixes.redis_results import PublisherRedisBackend
from tests.unit.conftest import IN_MEMORY_CONFIG, WriteConfig, subscribe_after_the_first_read


@pytest.fixture
def backend(write_config: WriteConfig) -> Iterator[PublisherRedisBackend]:
    """The Redis result backend the factory selects for ``redis://``, on a FakeRedis."""
    write_config({**IN_MEMORY_CONFIG, "celery": {**IN_MEMORY_CONFIG["celery"], "result_backend": "redis://"}})
    backend = create_app().extensions["celery"].backend
    assert isinstance(backend, PublisherRedisBackend)
    backend.client = fakeredis.FakeRedis()
    yield backend
    backend.result_consumer.stop()


def results(backend: RedisBackend, how: str) -> tuple[list[str], AsyncResult | GroupResult]:
    """New task ids, and what waits for them: an AsyncResult for one, a GroupResult for two."""
    ids = [str(uuid.uuid4()) for _ in range(1 if how == "get" else 2)]
    if how == "get":
        return ids, AsyncResult(ids[0], backend=backend, app=backend.app)
    members = [AsyncResult(task_id, backend=backend, app=backend.app) for task_id in ids]
    return ids, GroupResult(str(uuid.uuid4()), members, app=backend.app)


@pytest.mark.parametrize("how", ["get", "join"], ids=["get", "join"])
def test_a_result_stored_between_the_read_and_the_subscription_is_received(
    backend: PublisherRedisBackend, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    """A result stored after the wait's first read, published before Redis ran its SUBSCRIBE, still ends the wait."""
    ids, waiting = results(backend, how)

    def finish() -> None:
        for task_id in ids:
            backend.store_result(task_id, task_id, states.SUCCESS)

    subscribe_after_the_first_read(backend, monkeypatch, finish)
    assert waiting.get(timeout=30) == (ids[0] if how == "get" else ids)


def test_a_callers_on_message_sees_the_states_messages_bring(
    backend: PublisherRedisBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stored state read again is for the wait alone: on_message gets what is published while it waits."""
    task_id = str(uuid.uuid4())
    backend.store_result(task_id, None, states.STARTED)  # before the wait: on no caller's channel
    result = AsyncResult(task_id, backend=backend, app=backend.app)
    seen: list[str] = []

    def finish() -> None:  # after the first wait for messages, as the run ends
        backend.store_result(task_id, "done", states.SUCCESS)

    assert result.get(timeout=30, on_message=lambda meta: seen.append(meta["status"]), on_interval=finish) == "done"
    assert seen == [states.SUCCESS]


def test_the_stored_state_is_read_again_after_the_first_wait_then_once_a_second(
    backend: PublisherRedisBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a clock that stands still the first read again still comes, then none until a second has passed.

    No wait for messages brings one here: only a read finds the result, stored during the fifth wait.
    """
    clock = SimpleNamespace(now=100.0)
    monkeypatch.setattr(redis_waits, "time", SimpleNamespace(monotonic=lambda: clock.now))
    consumer = backend.result_consumer
    task_id = str(uuid.uuid4())
    reads_after_each_wait = [0]  # the first count: Celery's own read, before any wait

    def wait_for_messages(timeout: float | None = None) -> None:
        if len(reads_after_each_wait) == 5:
            backend.store_result(task_id, "done", states.SUCCESS)
            clock.now += redis_waits.REREAD_SECONDS
        reads_after_each_wait.append(0)

    read = consumer.on_wait_for_pending

    def counted_read(*args: Any, **kwargs: Any) -> None:
        reads_after_each_wait[-1] += 1
        read(*args, **kwargs)

    monkeypatch.setattr(consumer, "drain_events", wait_for_messages)
    monkeypatch.setattr(consumer, "on_wait_for_pending", counted_read)
    assert AsyncResult(task_id, backend=backend, app=backend.app).get(timeout=30) == "done"
    assert reads_after_each_wait == [1, 1, 0, 0, 0, 1]


@pytest.mark.parametrize(
    ("timeout", "interval"), [(30, 60), (30, 0.01)], ids=["timeout-below-interval", "interval-below-timeout"]
)
def test_a_groups_reads_nap_no_longer_than_its_interval_nor_past_its_timeout(
    backend: PublisherRedisBackend, monkeypatch: pytest.MonkeyPatch, timeout: float, interval: float
) -> None:
    """get(timeout, interval)'s reads, Celery's first and the later ones, each wait at most the shorter of the two.

    A read of a group with members not ready naps before it returns (Celery's get_many).
    """
    naps: list[float] = []
    monkeypatch.setattr(base, "time", SimpleNamespace(sleep=naps.append, monotonic=time.monotonic))
    ids, group = results(backend, "join")

    def finish() -> None:  # at the first interval, after the first read again
        for task_id in ids:
            backend.store_result(task_id, task_id, states.SUCCESS)

    assert group.get(timeout=timeout, interval=interval, on_interval=finish) == ids
    assert len(naps) >= 2 and max(naps) <= min(timeout, interval)
