"""How fast a client may start tasks (app/web/limits.py): a rate per client, and the limits' storage errors."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest
import redis
from flask import Blueprint
from freezegun import freeze_time
from limits.errors import StorageError

from app import create_app
from app.web.task_api import expose
from tests.metrics import moved, scrape
from tests.tasks import counted_task
from tests.unit.conftest import EAGER, IN_MEMORY_CONFIG, WriteConfig, limited_app, other_client


def test_past_its_rate_a_client_gets_429_json_with_retry_after_and_others_go_on(write_config: WriteConfig) -> None:
    """The third start in a minute of a client allowed two: 429 JSON, Retry-After; another client still gets 202."""
    app = limited_app(write_config, start_rate="2/minute")
    client = app.test_client()
    with freeze_time():  # the window's clock and the 429's: Retry-After is its whole length, however slow the machine
        answers = [client.post("/task/", json={"seconds": 0}) for _ in range(3)]
    assert [answer.status_code for answer in answers] == [202, 202, 429]
    assert (answers[2].json["error"]["name"], answers[2].json["error"]["message"]) == (
        "Too Many Requests",
        "2 per 1 minute",
    )
    assert answers[2].headers["Retry-After"] == "60"  # the seconds left in the minute's window
    # No X-RateLimit-* headers: each would cost every start a read of its window.
    assert not [name for answer in answers for name, _ in answer.headers if name.startswith("X-RateLimit")]
    assert other_client(app).post("/task/", json={"seconds": 0}).status_code == 202


@pytest.mark.parametrize("later", [59.5, 3600.0], ids=["in-the-windows-last-second", "past-the-window"])
def test_retry_after_is_never_less_than_a_second(
    write_config: WriteConfig, monkeypatch: pytest.MonkeyPatch, later: float
) -> None:
    """A window ending within the second, or over when the 429 is written, says Retry-After: 1, not 0 or less."""
    client = limited_app(write_config, start_rate="1/minute").test_client()
    assert client.post("/task/", json={"seconds": 0}).status_code == 202
    now = time.time()
    monkeypatch.setattr("app.web.limits.time", SimpleNamespace(time=lambda: now + later))  # the 429's clock alone
    refused = client.post("/task/", json={"seconds": 0})
    assert (refused.status_code, refused.headers["Retry-After"]) == (429, "1")


def test_no_x_ratelimit_headers_even_where_flask_limiters_own_setting_asks_for_them(write_config: WriteConfig) -> None:
    """RATELIMIT_HEADERS_ENABLED set: still none, each would cost a start a read of its window (Retry-After stays)."""
    write_config({**IN_MEMORY_CONFIG, "limits": {**IN_MEMORY_CONFIG["limits"], "start_rate": "1/minute"}})
    client = create_app({"CELERY": EAGER, "RATELIMIT_HEADERS_ENABLED": True}).test_client()
    answers = [client.post("/task/", json={"seconds": 0}) for _ in range(2)]
    assert [answer.status_code for answer in answers] == [202, 429]
    assert not [name for answer in answers for name, _ in answer.headers if name.startswith("X-RateLimit")]
    assert "Retry-After" in answers[1].headers


def test_a_window_unreadable_after_the_hit_still_answers_the_rates_429(
    write_config: WriteConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its storage lost between the hit and the window's read: 429 with the window's whole length, not a 500."""
    app = limited_app(write_config, start_rate="1/minute")
    client = app.test_client()
    assert client.post("/task/", json={"seconds": 0}).status_code == 202
    (limiter,) = app.extensions["limiter"]
    lost = StorageError(redis.exceptions.ConnectionError("Redis is away"))
    monkeypatch.setattr(limiter.limiter, "get_window_stats", lambda *args: (_ for _ in ()).throw(lost))
    refused = client.post("/task/", json={"seconds": 0})
    assert (refused.status_code, refused.headers["Retry-After"]) == (429, "60")


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


def test_without_authentication_each_address_has_its_own_count(write_config: WriteConfig) -> None:
    """`auth: false`: the rate counts per client address; two addresses each get their own budget."""
    write_config({**IN_MEMORY_CONFIG, "limits": {**IN_MEMORY_CONFIG["limits"], "start_rate": "1/minute"}})
    client = create_app({"CELERY": EAGER}).test_client()
    answers = [
        client.post("/task/", json={"seconds": 0}, environ_base={"REMOTE_ADDR": address}).status_code
        for address in ("10.0.0.1", "10.0.0.2", "10.0.0.1")
    ]
    assert answers == [202, 202, 429]


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
    assert [record.getMessage() for record in caplog.records if record.name == "app.web.dependencies"] == [
        "result backend unreachable: ConnectionError"
    ]


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
