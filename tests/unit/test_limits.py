"""How much a client may start (app/web/limits.py): a rate per client, and a cap on its unfinished tasks."""

from __future__ import annotations

import uuid
from typing import Any

import fakeredis
import pytest
from celery import states
from flask import Blueprint, Flask
from flask.testing import FlaskClient
from kombu.exceptions import OperationalError

from app import create_app
from app.web import limits
from app.web.task_api import expose
from tests.tasks import counted_task
from tests.unit.conftest import EAGER, IN_MEMORY_CONFIG, OTHER_TOKEN, TOKENS, TokenClient, WriteConfig


def limited_app(write_config: WriteConfig, eager: bool = True, **settings: Any) -> Flask:
    """An app authenticating CLIENT and OTHER_CLIENT, with these limits (the rest as the unit tier's)."""
    write_config({**IN_MEMORY_CONFIG, "limits": {**IN_MEMORY_CONFIG["limits"], **settings}})
    # Not eager: a queue of its own (the in-memory broker's queues are shared by the whole process).
    app = create_app({"CELERY": EAGER if eager else {"task_default_queue": "limits"}, **TOKENS})
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
    assert answers[2].json["error"]["name"] == "Too Many Requests"
    assert 0 < int(answers[2].headers["Retry-After"]) <= 60
    assert other_client(app).post("/task/", json={"seconds": 0}).status_code == 202


def test_the_rate_counts_every_exposed_task_together_and_nothing_else(write_config: WriteConfig) -> None:
    """Starts of any exposed task share one budget; reading a task's state spends none of it."""
    app = limited_app(write_config, start_rate="2/minute")
    extra = Blueprint("extra", __name__)
    expose(extra, "/count/", counted_task)
    app.register_blueprint(extra)
    client = app.test_client()
    task_id = client.post("/task/", json={"seconds": 0}).json["task_id"]
    assert [client.get(f"/task/{task_id}").status_code for _ in range(3)] == [200] * 3
    assert client.post("/count/", json={"key": "rate"}).status_code == 202
    assert client.post("/count/", json={"key": "rate"}).status_code == 429


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


def test_a_start_the_broker_refuses_takes_no_place(write_config: WriteConfig, monkeypatch: pytest.MonkeyPatch) -> None:
    """A 503 leaves the client's count as it was: with a cap of one, the next start is accepted."""
    app = limited_app(write_config, eager=False, unfinished_tasks=1)
    client, task = app.test_client(), app.extensions["celery"].tasks["app.tasks.sample_task"]
    with monkeypatch.context() as patch:
        patch.setattr(type(task), "apply_async", lambda *args, **kwargs: (_ for _ in ()).throw(OperationalError("x")))
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


def test_on_redis_the_count_is_shared_by_every_process(write_config: WriteConfig) -> None:
    """Two apps (two processes) on one Redis: a cap of one counts both apps' starts."""
    redis = fakeredis.FakeRedis(decode_responses=True)
    apps = [limited_app(write_config, eager=False, unfinished_tasks=1) for _ in range(2)]
    for app in apps:
        app.extensions["started_tasks"] = started = limits._RedisStarted("redis://", {})
        started._client = redis
    assert apps[0].test_client().post("/task/").status_code == 202
    assert apps[1].test_client().post("/task/").status_code == 429
    assert len(redis.keys("started-tasks:*")) == 1


def test_a_limits_redis_out_of_reach_is_503_json_and_queues_nothing(
    write_config: WriteConfig, caplog: pytest.LogCaptureFixture
) -> None:
    """limits.storage_url on a Redis that refuses (nothing listens on port 1): 503 as JSON, the error logged."""
    app = limited_app(write_config, storage_url="redis://127.0.0.1:1/0")
    assert isinstance(app.extensions["started_tasks"], limits._RedisStarted)
    response = app.test_client().post("/task/", json={"seconds": 0})
    assert (response.status_code, response.json["error"]["message"]) == (
        503,
        "The limits storage is unreachable; try again later.",
    )
    assert "limits storage unreachable: ConnectionError" in caplog.text


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
