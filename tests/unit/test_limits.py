"""How much a client may start (app/web/limits.py): a rate per client, and a cap on its unfinished tasks."""

from __future__ import annotations

import uuid
from typing import Any

import fakeredis
import pytest
import redis
from celery import Task, states
from flask import Blueprint, Flask
from flask.testing import FlaskClient
from kombu.exceptions import OperationalError

from app import create_app
from app.web import limits
from app.web.task_api import expose
from tests.metrics import moved, scrape
from tests.tasks import counted_task
from tests.unit.conftest import EAGER, IN_MEMORY_CONFIG, OTHER_TOKEN, TOKENS, TokenClient, WriteConfig


def limited_app(
    write_config: WriteConfig, eager: bool = True, celery: dict[str, Any] | None = None, **settings: Any
) -> Flask:
    """An app authenticating CLIENT and OTHER_CLIENT, with these limits and Celery settings (the rest: the tier's)."""
    write_config({**IN_MEMORY_CONFIG, "limits": {**IN_MEMORY_CONFIG["limits"], **settings}})
    # Not eager: a queue of its own (the in-memory broker's queues are shared by the whole process).
    app = create_app({"CELERY": {**(EAGER if eager else {"task_default_queue": "limits"}), **(celery or {})}, **TOKENS})
    app.test_client_class = TokenClient
    return app


def other_client(app: Flask) -> FlaskClient:
    """A test client sending OTHER_CLIENT's token."""
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {OTHER_TOKEN}"
    return client


def test_past_its_rate_a_client_gets_429_json_with_retry_after_and_others_go_on(write_config: WriteConfig) -> None:
    """The third start in a minute of a client allowed two: 429 JSON, Retry-After; another client still gets 202."""
    app = limited_app(write_config, start_rate="2/minute")
    client = app.test_client()
    answers = [client.post("/task/", json={"seconds": 0}) for _ in range(3)]
    assert [answer.status_code for answer in answers] == [202, 202, 429]
    assert (answers[2].json["error"]["name"], answers[2].json["error"]["message"]) == (
        "Too Many Requests",
        "2 per 1 minute",
    )
    assert 58 <= int(answers[2].headers["Retry-After"]) <= 60  # the seconds left in the minute's window
    # No X-RateLimit-* headers: each would cost every start a read of its window.
    assert not [name for answer in answers for name, _ in answer.headers if name.startswith("X-RateLimit")]
    assert other_client(app).post("/task/", json={"seconds": 0}).status_code == 202


def test_the_rate_counts_every_exposed_task_together_and_nothing_else(write_config: WriteConfig) -> None:
    """Starts of any exposed task share one budget; reading a task's state, or a POST of another view, spends none."""
    app = limited_app(write_config, start_rate="2/minute")
    extra = Blueprint("extra", __name__)
    expose(extra, "/count/", counted_task)
    extra.post("/other/")(lambda: ("", 204))
    app.register_blueprint(extra)
    client = app.test_client()
    task_id = client.post("/task/", json={"seconds": 0}).json["task_id"]
    assert [client.get(f"/task/{task_id}").status_code for _ in range(3)] == [200] * 3
    assert client.post("/count/", json={"key": "rate"}).status_code == 202
    assert client.post("/count/", json={"key": "rate"}).status_code == 429
    assert [client.post("/other/").status_code for _ in range(3)] == [204] * 3


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


def test_without_authentication_each_address_has_its_own_count(write_config: WriteConfig) -> None:
    """`auth: false`: the rate counts per client address; two addresses each get their own budget."""
    write_config({**IN_MEMORY_CONFIG, "limits": {**IN_MEMORY_CONFIG["limits"], "start_rate": "1/minute"}})
    client = create_app({"CELERY": EAGER}).test_client()
    answers = [
        client.post("/task/", json={"seconds": 0}, environ_base={"REMOTE_ADDR": address}).status_code
        for address in ("10.0.0.1", "10.0.0.2", "10.0.0.1")
    ]
    assert answers == [202, 202, 429]


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
    now = limits.time.time()
    monkeypatch.setattr(limits.time, "time", lambda: now + 86_401)  # result_expires: a day
    assert client.post("/task/").status_code == 202


@pytest.fixture
def redis_started(monkeypatch: pytest.MonkeyPatch) -> fakeredis.FakeServer:
    """Redis clients the limits make (_RedisStarted) talk to one in-process fake Redis, which this answers."""
    server = fakeredis.FakeServer()

    def from_url(url: str, **options: Any) -> fakeredis.FakeRedis:
        return fakeredis.FakeRedis.from_url(url, server=server, **options)

    monkeypatch.setattr(limits.redis.Redis, "from_url", from_url)
    return server


def redis_backend(beside_id_records: bool) -> dict[str, Any]:
    """The Celery settings of an app whose result backend is a Redis (the fake one, once on_redis() made it so)."""
    return {"result_backend": "redis://"} if beside_id_records else {}


def on_redis(app: Flask, server: fakeredis.FakeServer, beside_id_records: bool = False) -> Flask:
    """`app` with its unfinished tasks counted in Redis (its rate stays in memory): its result backend's, or another."""
    if beside_id_records:
        app.extensions["celery"].backend.client = fakeredis.FakeRedis(server=server)
    app.extensions["started_tasks"] = limits._RedisStarted("redis://", {"socket_timeout": 2}, beside_id_records)
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
    started = limits._RedisStarted("redis://", {}) if storage == "redis" else limits._MemoryStarted()
    started.add(limits.Slot("k", "kept", 1.0, 0.0, 10))
    started.remove("k", "gone")
    assert started.members("k") == ["kept"]


@pytest.mark.parametrize("storage", ["memory", "redis"], ids=["memory", "redis"])
def test_a_start_as_old_as_the_bound_is_forgotten_in_either_storage(redis_started: Any, storage: str) -> None:
    """As Redis's ZREMRANGEBYSCORE, whose bounds are inclusive: a start at exactly `forget_before` goes."""
    started = limits._RedisStarted("redis://", {}) if storage == "redis" else limits._MemoryStarted()
    started.add(limits.Slot("k", "old", 5.0, 0.0, 10))
    assert started.add(limits.Slot("k", "new", 10.0, 5.0, 10)) == 1
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


def test_a_limits_redis_out_of_reach_is_503_json_and_queues_nothing(
    write_config: WriteConfig, caplog: pytest.LogCaptureFixture
) -> None:
    """limits.storage_url on a Redis that refuses (port 1): 503 as JSON, logged and counted; its clients time out."""
    app = limited_app(write_config, storage_url="redis://127.0.0.1:1/0")
    # Both clients, the rate's and the count's, within the factory's socket timeouts; ids read back as text.
    ((limiter,), started) = app.extensions["limiter"], app.extensions["started_tasks"]
    rate_options = limiter.storage.storage.connection_pool.connection_kwargs
    assert (rate_options["socket_connect_timeout"], rate_options["socket_timeout"]) == (1, 2)
    options = started._client.connection_pool.connection_kwargs
    assert (options["socket_connect_timeout"], options["socket_timeout"], options["decode_responses"]) == (1, 2, True)
    before = scrape(app.test_client())
    response = app.test_client().post("/task/", json={"seconds": 0})
    assert (response.status_code, response.json["error"]["message"]) == (
        503,
        "The limits storage is unreachable; try again later.",
    )
    assert "limits storage unreachable: ConnectionError" in caplog.text
    assert moved(before, scrape(app.test_client()), "dependency_unavailable_total", dependency="limits storage") == 1


def test_the_result_backends_redis_out_of_reach_is_named_so(
    write_config: WriteConfig, caplog: pytest.LogCaptureFixture
) -> None:
    """Counting in the result backend's Redis (the default there), its failure says the result backend is down.

    The rate is checked first, before the view: its storage's error answers.
    """
    backend = "redis://127.0.0.1:1/0"
    celery = {**IN_MEMORY_CONFIG["celery"], "result_backend": backend}
    write_config({**IN_MEMORY_CONFIG, "celery": celery, "limits": {"start_rate": "10/second"}})
    response = create_app().test_client().post("/task/", json={"seconds": 0})
    assert (response.status_code, response.json["error"]["message"]) == (
        503,
        "The result backend is unreachable; try again later.",
    )
    assert [record.getMessage() for record in caplog.records if record.name == "app.web.limits"] == [
        "result backend unreachable: ConnectionError"
    ]


def test_the_counts_redis_out_of_reach_is_the_limits_storages_503(
    write_config: WriteConfig, caplog: pytest.LogCaptureFixture
) -> None:
    """The rate counted in memory, the unfinished tasks in a Redis that refuses: 503 naming the limits storage."""
    app = limited_app(write_config, eager=False)
    app.extensions["started_tasks"] = limits._RedisStarted("redis://127.0.0.1:1/0", {"socket_connect_timeout": 1})
    response = app.test_client().post("/task/")
    assert (response.status_code, response.json["error"]["message"]) == (
        503,
        "The limits storage is unreachable; try again later.",
    )
    assert "limits storage unreachable: ConnectionError" in caplog.text


def test_a_redis_error_elsewhere_is_not_the_limits_to_name(
    write_config: WriteConfig, caplog: pytest.LogCaptureFixture
) -> None:
    """A Redis error outside the limits' own calls (a view's bug, another client) stays a 500: no limits storage 503."""
    app = limited_app(write_config, storage_url="redis://127.0.0.1:1/0")
    broken = Blueprint("broken", __name__)
    broken.get("/raises")(lambda: (_ for _ in ()).throw(redis.exceptions.ConnectionError("elsewhere")))
    app.register_blueprint(broken)
    response = app.test_client().get("/raises")
    assert (response.status_code, response.json["error"]["name"]) == (500, "Internal Server Error")
    assert "unreachable" not in caplog.text


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
