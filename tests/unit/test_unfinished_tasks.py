"""A cap on a client's unfinished tasks (app/web/unfinished_tasks.py): in memory, in Redis, beside the id records."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

import fakeredis
import pytest
import redis
from celery import Task, states
from flask import Flask
from kombu.exceptions import OperationalError

from app import create_app
from app.web import unfinished_tasks
from tests.unit.conftest import IN_MEMORY_CONFIG, TOKENS, TokenClient, WriteConfig, limited_app, other_client


def test_at_its_cap_a_client_gets_429_until_one_of_its_tasks_ends(write_config: WriteConfig) -> None:
    """Two unfinished tasks allowed: the third start is 429; once one is cancelled (it ended), a start is 202 again."""
    app = limited_app(write_config, eager=False, unfinished_tasks=2, storage_url="memory://")
    client, other = app.test_client(), other_client(app)
    first, _ = (client.post("/task/").json["task_id"] for _ in range(2))
    refused = client.post("/task/")
    assert (refused.status_code, refused.json["error"]["message"]) == (
        429,
        "At most 2 tasks of a client may be queued or running; try again once one ends.",
    )
    assert other.post("/task/").status_code == 202  # another client's own count
    assert client.delete(f"/task/{first}").status_code == 202
    assert client.post("/task/").status_code == 202


@pytest.mark.parametrize("beside_id_records", [False, True], ids=["in memory", "beside the id records"])
def test_a_start_the_broker_refuses_takes_no_place(
    write_config: WriteConfig, monkeypatch: pytest.MonkeyPatch, redis_started: Any, beside_id_records: bool
) -> None:
    """A 503 leaves the client's count as it was: with a cap of one, the next start is accepted."""
    app = limited_app(write_config, eager=False, unfinished_tasks=1, celery=redis_backend(beside_id_records))
    if beside_id_records:
        on_redis(app, redis_started, beside_id_records=True)
    client = app.test_client()
    with monkeypatch.context() as patch:
        # Refused as it is sent, after its id record (and its count beside it) was written.
        patch.setattr(Task, "apply_async", lambda *args, **kwargs: (_ for _ in ()).throw(OperationalError("x")))
        assert client.post("/task/").status_code == 503
    assert client.post("/task/").status_code == 202


def test_starts_older_than_the_results_are_forgotten(
    write_config: WriteConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A start kept past result_expires (its record gone, its state unknown) no longer counts."""
    app = limited_app(write_config, eager=False, unfinished_tasks=1)
    client = app.test_client()
    assert client.post("/task/").status_code == 202
    now = unfinished_tasks.time.time()
    monkeypatch.setattr(unfinished_tasks.time, "time", lambda: now + 86_401)  # result_expires: a day
    assert client.post("/task/").status_code == 202


@pytest.fixture
def redis_started(monkeypatch: pytest.MonkeyPatch) -> fakeredis.FakeServer:
    """Redis clients the limits make (_RedisStarted) talk to one in-process fake Redis, which this answers."""
    server = fakeredis.FakeServer()

    def from_url(url: str, **options: Any) -> fakeredis.FakeRedis:
        return fakeredis.FakeRedis.from_url(url, server=server, **options)

    monkeypatch.setattr(unfinished_tasks.redis.Redis, "from_url", from_url)
    return server


def redis_backend(beside_id_records: bool) -> dict[str, Any]:
    """The Celery settings of an app whose result backend is a Redis (the fake one, once on_redis() made it so)."""
    return {"result_backend": "redis://"} if beside_id_records else {}


def on_redis(app: Flask, server: fakeredis.FakeServer, beside_id_records: bool = False) -> Flask:
    """`app` with its unfinished tasks counted in Redis (its rate stays in memory): its result backend's, or another."""
    if beside_id_records:
        app.extensions["celery"].backend.client = fakeredis.FakeRedis(server=server)
    app.extensions["started_tasks"] = unfinished_tasks.RedisStarted(
        "redis://", {"socket_timeout": 2}, beside_id_records
    )
    return app


REDIS_COUNTS = {"another Redis": False, "the result backend's Redis": True}


@pytest.mark.parametrize("beside_id_records", REDIS_COUNTS.values(), ids=REDIS_COUNTS)
def test_on_redis_a_finished_task_makes_room_at_the_cap(
    write_config: WriteConfig, redis_started: Any, beside_id_records: bool
) -> None:
    """Counted in Redis as in memory: two unfinished allowed, the third refused; once one ended, a start is 202."""
    app = limited_app(write_config, eager=False, unfinished_tasks=2, celery=redis_backend(beside_id_records))
    on_redis(app, redis_started, beside_id_records)
    client = app.test_client()
    first, _ = (client.post("/task/").json["task_id"] for _ in range(2))
    assert client.post("/task/").status_code == 429
    app.extensions["celery"].backend.store_result(first, None, states.SUCCESS)
    assert client.post("/task/").status_code == 202
    assert first not in app.extensions["started_tasks"].members("started-tasks:tester")


def test_beside_the_id_records_a_start_is_one_redis_call_and_a_refused_one_records_nothing(
    write_config: WriteConfig, redis_started: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In the result backend's Redis, a start is counted in its id record's call; one past the cap is not recorded."""
    app = limited_app(write_config, eager=False, unfinished_tasks=2, celery=redis_backend(True))
    client = on_redis(app, redis_started, beside_id_records=True).test_client()
    assert client.post("/task/").status_code == 202  # the first write loads the script
    sent: list[str] = []
    send = redis.Redis.execute_command
    monkeypatch.setattr(
        redis.Redis, "execute_command", lambda *args, **kwargs: sent.append(args[1]) or send(*args, **kwargs)
    )
    assert client.post("/task/").status_code == 202
    assert sent == ["EVALSHA"]
    assert client.post("/task/").status_code == 429
    records = fakeredis.FakeRedis(server=redis_started).keys("celery-task-meta-*")
    assert len(records) == 4  # two tasks and their owners
    assert len(app.extensions["started_tasks"].members("started-tasks:tester")) == 2


@pytest.mark.parametrize("storage", ["memory", "redis"], ids=["memory", "redis"])
def test_letting_go_a_task_no_longer_counted_changes_nothing(redis_started: Any, storage: str) -> None:
    """As Redis's ZREM: removing an id that is not kept (another request let it go) is no error, and keeps the rest."""
    started = unfinished_tasks.RedisStarted("redis://", {}) if storage == "redis" else unfinished_tasks.MemoryStarted()
    started.add(unfinished_tasks.Slot("k", "kept", 1.0, 0.0, 10))
    started.remove("k", "gone")
    assert started.members("k") == ["kept"]


@pytest.mark.parametrize("storage", ["memory", "redis"], ids=["memory", "redis"])
def test_a_start_as_old_as_the_bound_is_forgotten_in_either_storage(redis_started: Any, storage: str) -> None:
    """As Redis's ZREMRANGEBYSCORE, whose bounds are inclusive: a start at exactly `forget_before` goes."""
    started = unfinished_tasks.RedisStarted("redis://", {}) if storage == "redis" else unfinished_tasks.MemoryStarted()
    started.add(unfinished_tasks.Slot("k", "old", 5.0, 0.0, 10))
    assert started.add(unfinished_tasks.Slot("k", "new", 10.0, 5.0, 10)) == 1
    assert started.members("k") == ["new"]


@pytest.mark.parametrize("beside_id_records", REDIS_COUNTS.values(), ids=REDIS_COUNTS)
def test_on_redis_the_count_is_shared_by_every_process(
    write_config: WriteConfig, redis_started: Any, beside_id_records: bool
) -> None:
    """Two apps (two processes) on one Redis: a cap of one counts both apps' starts."""
    apps = [
        on_redis(
            limited_app(write_config, eager=False, unfinished_tasks=1, celery=redis_backend(beside_id_records)),
            redis_started,
            beside_id_records,
        )
        for _ in range(2)
    ]
    assert apps[0].test_client().post("/task/").status_code == 202
    assert apps[1].test_client().post("/task/").status_code == 429
    assert len(fakeredis.FakeRedis(server=redis_started).keys("started-tasks:*")) == 1


def test_the_counts_redis_out_of_reach_is_the_limits_storages_503(
    write_config: WriteConfig, caplog: pytest.LogCaptureFixture
) -> None:
    """The rate counted in memory, the unfinished tasks in a Redis that refuses: 503 naming the limits storage."""
    app = limited_app(write_config, eager=False)
    app.extensions["started_tasks"] = unfinished_tasks.RedisStarted(
        "redis://127.0.0.1:1/0", {"socket_connect_timeout": 1}
    )
    response = app.test_client().post("/task/")
    assert (response.status_code, response.json["error"]["message"]) == (
        503,
        "The limits storage is unreachable; try again later.",
    )
    assert "limits storage unreachable: ConnectionError" in caplog.text


def test_a_finished_task_is_let_go_only_when_the_cap_is_reached(write_config: WriteConfig) -> None:
    """Below the cap nothing is read; at it, the tasks the result backend says ended make room."""
    app = limited_app(write_config, eager=False, unfinished_tasks=1)
    client = app.test_client()
    first = client.post("/task/").json["task_id"]
    app.extensions["celery"].backend.store_result(first, None, states.SUCCESS)
    assert client.post("/task/").status_code == 202
    started = app.extensions["started_tasks"]
    assert first not in started._keys["started-tasks:tester"]
    assert str(uuid.UUID(next(iter(started._keys["started-tasks:tester"]))))


# Where the limits count a start (limits.storage_url; None: the result backend's), beside which result backend:
# the Celery settings, the storage URL, the Redis that keeps the count, whether the count is a call of its own.
WIRINGS = {
    "by default, the result backend's Redis": ({}, None, "redis://", False),
    "another Redis": ({}, "redis://limits", "redis://limits", True),
    "Celery's own Redis backend's Redis": ({"override_backends": {}}, None, "redis://", True),
}


@pytest.mark.parametrize(("celery", "storage_url", "counted_in", "own_call"), WIRINGS.values(), ids=WIRINGS)
def test_a_start_rides_in_its_id_records_call_only_beside_the_factorys_redis_result_backend(
    write_config: WriteConfig,
    monkeypatch: pytest.MonkeyPatch,
    celery: dict[str, Any],
    storage_url: str | None,
    counted_in: str,
    own_call: bool,
) -> None:
    """By default a start is counted in its id record's Lua call, in the result backend's Redis: no call of its own.

    Counted in another Redis (limits.storage_url), or beside Celery's own Redis backend (which
    has no such call), it takes a call of its own, in the limits' Redis. Either way every start counts.
    """
    servers: dict[str, fakeredis.FakeServer] = {}

    def from_url(url: str, **options: Any) -> fakeredis.FakeRedis:
        return fakeredis.FakeRedis.from_url(url, server=servers.setdefault(url, fakeredis.FakeServer()), **options)

    monkeypatch.setattr(unfinished_tasks.redis.Redis, "from_url", from_url)  # the rate's client and the count's
    limits = {**IN_MEMORY_CONFIG["limits"], "storage_url": storage_url}
    backend = {**IN_MEMORY_CONFIG["celery"], "result_backend": "redis://", **celery}
    write_config({**IN_MEMORY_CONFIG, "celery": backend, "limits": limits})
    app = create_app({"CELERY": {"task_default_queue": "limits"}, **TOKENS})
    app.test_client_class = TokenClient
    app.extensions["celery"].backend.client = from_url("redis://")
    client = app.test_client()
    first = client.post("/task/").json["task_id"]  # the first start loads the scripts
    sent: list[tuple[Any, ...]] = []
    send = redis.Redis.execute_command
    monkeypatch.setattr(
        redis.Redis, "execute_command", lambda *args, **kwargs: sent.append(args[1:3]) or send(*args, **kwargs)
    )
    second = client.post("/task/").json["task_id"]
    assert (("EVALSHA", hashlib.sha1(unfinished_tasks.ADD.encode()).hexdigest()) in sent) == own_call
    started = {url: fakeredis.FakeRedis(server=server, decode_responses=True) for url, server in servers.items()}
    assert [url for url, kept in started.items() if kept.exists("started-tasks:tester")] == [counted_in]
    assert set(started[counted_in].zrange("started-tasks:tester", 0, -1)) == {first, second}


def test_at_the_cap_with_none_ended_a_start_is_refused_without_a_second_count(
    write_config: WriteConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the cap, none of the client's tasks ended: the start is refused as is, not counted again (a Redis call)."""
    app = limited_app(write_config, eager=False, unfinished_tasks=1)
    started = app.extensions["started_tasks"]
    counts: list[str] = []
    add = started.add
    monkeypatch.setattr(started, "add", lambda slot: counts.append(slot.task_id) or add(slot))
    client = app.test_client()
    assert [client.post("/task/").status_code for _ in range(2)] == [202, 429]
    assert len(counts) == 2  # one count a start
    assert len(started.members("started-tasks:tester")) == 1


@pytest.mark.parametrize("beside_id_records", REDIS_COUNTS.values(), ids=REDIS_COUNTS)
def test_on_redis_any_of_a_clients_tasks_that_ended_makes_room_its_latest_too(
    write_config: WriteConfig, redis_started: Any, beside_id_records: bool
) -> None:
    """At a cap of three, the last of the three started ends: the fourth start is 202 (every one started is read)."""
    app = limited_app(write_config, eager=False, unfinished_tasks=3, celery=redis_backend(beside_id_records))
    client = on_redis(app, redis_started, beside_id_records).test_client()
    *_, latest = (client.post("/task/").json["task_id"] for _ in range(3))
    assert client.post("/task/").status_code == 429
    app.extensions["celery"].backend.store_result(latest, None, states.SUCCESS)
    assert client.post("/task/").status_code == 202
