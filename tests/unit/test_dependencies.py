"""A broker or result backend that refuses connections (app/web/dependencies.py).

Stalled services (accepting connections, never answering) are covered by the integration
tier with paused containers.
"""

from __future__ import annotations

import importlib
import sys
import uuid
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from celery.backends.database import session as database_session
from celery.exceptions import BackendGetMetaError
from flask import Flask
from flask.testing import FlaskClient
from kombu import Connection
from kombu.exceptions import OperationalError
from kombu.utils import functional as kombu_functional
from redis.exceptions import ResponseError
from sqlalchemy import event
from sqlalchemy import exc as database
from sqlalchemy.engine import Engine

from app import create_app
from app.fixes.amqp_blocked import REASON, BrokerBlocked
from app.tasking import backend_errors
from app.tasks import sample_task
from app.web import dependencies, task_api
from app.web.dependencies import mask_secrets
from tests.metrics import INTERNAL
from tests.unit.conftest import IN_MEMORY_CONFIG, WriteConfig

# Nothing listens on port 1: connections are refused at once, without any server.
REFUSING_BROKER = "amqp://user:s3cret-broker@127.0.0.1:1//"
REFUSING_BACKEND = "redis://:s3cret-backend@127.0.0.1:1/0"
REFUSING_DATABASE = "db+postgresql+psycopg://user:s3cret-backend@127.0.0.1:1/results"
SECRETS = ("s3cret-broker", "s3cret-backend")


def app_with(write_config: WriteConfig, **celery: str) -> Flask:
    write_config({**IN_MEMORY_CONFIG, "celery": {**IN_MEMORY_CONFIG["celery"], **celery}})
    return create_app()


def assert_unavailable(response: Any, dependency: str) -> None:
    assert response.status_code == 503
    assert response.json["error"]["message"] == f"The {dependency} is unreachable; try again later."


def broker_connection_attempts(monkeypatch: pytest.MonkeyPatch, limit: int) -> list[str]:
    """The host of each broker connection attempt from now on; past `limit`, an error ends the retrying."""
    connect = Connection._connection_factory
    attempts: list[str] = []

    def count(connection: Connection) -> Any:
        attempts.append(connection.hostname)
        if len(attempts) > limit:
            raise RuntimeError("retrying without end")
        return connect(connection)

    monkeypatch.setattr(Connection, "_connection_factory", count)
    return attempts


def test_post_with_broker_down_is_503_after_one_retry_and_its_task_refused(
    write_config: WriteConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The broker refuses: one retry at once (it replaces a pooled connection the broker closed), then 503 JSON.

    And the id recorded before publishing is stored REVOKED (never to run).
    """
    app = app_with(write_config, broker_url=REFUSING_BROKER)
    task_id = uuid.uuid4()
    monkeypatch.setattr(task_api, "uuid", lambda: str(task_id))  # the factory's ids only
    attempts = broker_connection_attempts(monkeypatch, limit=3)
    pauses: list[float] = []
    monkeypatch.setattr(kombu_functional, "sleep", pauses.append)  # kombu's waits between retries
    response = app.test_client().post("/task/")
    assert_unavailable(response, "broker")
    assert (attempts, pauses) == (["127.0.0.1"] * 2, [])
    assert app.extensions["celery"].AsyncResult(str(task_id)).state == "REVOKED"


def test_post_with_backend_down_is_503_and_publishes_nothing(write_config: WriteConfig) -> None:
    """The backend refuses: 503 JSON before anything reaches the queue."""
    # A queue of its own: the in-memory broker's queues are shared by the whole process.
    app = app_with(write_config, result_backend=REFUSING_BACKEND, task_default_queue="backend-down")
    assert_unavailable(app.test_client().post("/task/"), "result backend")
    with app.extensions["celery"].connection_for_read() as connection:
        assert connection.default_channel.queue_declare("backend-down").message_count == 0


@pytest.mark.parametrize("result_backend", [REFUSING_BACKEND, REFUSING_DATABASE], ids=["redis", "postgresql"])
def test_get_with_backend_down_is_503(write_config: WriteConfig, result_backend: str) -> None:
    """GET /task/<id> cannot tell anything without the backend: 503 JSON, not 404 or 500."""
    app = app_with(write_config, result_backend=result_backend)
    assert_unavailable(app.test_client().get(f"/task/{uuid.uuid4()}"), "result backend")


@pytest.fixture
def database_connects() -> Iterator[list[str]]:
    """The host of each connection SQLAlchemy's engines attempt while the test runs."""
    attempts: list[str] = []

    def count(dialect: object, record: object, arguments: object, parameters: dict[str, Any]) -> None:
        attempts.append(parameters["host"])

    event.listen(Engine, "do_connect", count)
    yield attempts
    event.remove(Engine, "do_connect", count)


def test_post_with_database_down_is_503_after_one_attempt(
    write_config: WriteConfig, monkeypatch: pytest.MonkeyPatch, database_connects: list[str]
) -> None:
    """A PostgreSQL result backend that refuses: one connection attempt, then 503 JSON; its password shown nowhere.

    Celery's own backend retried its first table check 10 times, sleeping in between (0.2-4.3 s).
    """
    app = app_with(write_config, result_backend=REFUSING_DATABASE, task_default_queue="database-down")
    pauses: list[float] = []
    monkeypatch.setattr(database_session, "time", SimpleNamespace(sleep=pauses.append))
    response = app.test_client().post("/task/")
    assert_unavailable(response, "result backend")
    assert (database_connects, pauses) == (["127.0.0.1"], [])
    assert "s3cret-backend" not in response.get_data(as_text=True)


def test_readyz_is_ok_when_both_answer(client: FlaskClient) -> None:
    """Both dependencies reachable: 200."""
    response = client.get("/readyz", base_url=INTERNAL)
    assert (response.status_code, response.json) == (
        200,
        {"status": "ok", "checks": {"broker": "ok", "result_backend": "ok"}},
    )


def test_the_public_readyz_says_only_whether_it_is_ready_and_serves_no_metrics(write_config: WriteConfig) -> None:
    """On the public port: 503 and `unavailable`, no reason (the internal port's readyz names it); /metrics 404."""
    client = app_with(write_config, broker_url=REFUSING_BROKER).test_client()
    response = client.get("/readyz")
    assert (response.status_code, response.json) == (503, {"status": "unavailable"})
    assert client.get("/metrics").status_code == 404


def test_readyz_names_what_is_down_and_never_a_password(
    write_config: WriteConfig, caplog: pytest.LogCaptureFixture
) -> None:
    """Both down: 503 naming each with its error; passwords appear nowhere, logs included."""
    client = app_with(write_config, broker_url=REFUSING_BROKER, result_backend=REFUSING_BACKEND).test_client()
    responses = [client.get("/readyz", base_url=INTERNAL), client.post("/task/"), client.get(f"/task/{uuid.uuid4()}")]
    checks = responses[0].json["checks"]
    assert responses[0].status_code == 503
    assert checks["broker"].startswith("unreachable: OperationalError: ")
    assert checks["result_backend"].startswith("unreachable: ConnectionError: ")
    everything = caplog.text + "".join(response.get_data(as_text=True) for response in responses)
    assert not [secret for secret in SECRETS if secret in everything]


def test_passwords_an_error_repeats_are_masked(
    write_config: WriteConfig, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Whatever a client library's error says, /readyz and the logs show the passwords as **."""
    client = app_with(write_config, broker_url=REFUSING_BROKER, result_backend=REFUSING_BACKEND).test_client()

    def fail_naming_urls(*args: object, **kwargs: object) -> None:
        raise OperationalError(f"cannot reach {REFUSING_BROKER} nor {REFUSING_BACKEND}")

    for name in ("app.web.dependencies._ping_broker", "app.web.dependencies._ping_backend"):
        monkeypatch.setattr(name, fail_naming_urls)
    sample = client.application.extensions["celery"].tasks[sample_task.name]
    monkeypatch.setattr(type(sample), "apply_async", fail_naming_urls)  # the record and the publish
    checks = client.get("/readyz", base_url=INTERNAL).json["checks"]
    assert_unavailable(client.post("/task/"), "broker")
    masked = "OperationalError: cannot reach amqp://user:**@127.0.0.1:1// nor redis://:**@127.0.0.1:1/0"
    assert checks == {"broker": f"unreachable: {masked}", "result_backend": f"unreachable: {masked}"}
    assert f"broker unreachable: {masked}" in caplog.text
    assert not [secret for secret in SECRETS if secret in caplog.text]


@pytest.mark.parametrize(
    ("error", "status"),
    [(ResponseError("READONLY You can't write against a read only replica."), 503), (KeyError("bug"), 500)],
    ids=["redis-read-only", "key-error-is-a-bug"],
)
def test_backend_errors_are_503_but_bugs_are_not(
    write_config: WriteConfig, monkeypatch: pytest.MonkeyPatch, error: Exception, status: int
) -> None:
    """A Redis that answers with an error is unavailable too; a KeyError stays a bug (500)."""
    app = app_with(write_config, result_backend=REFUSING_BACKEND)

    def fail(*args: object) -> None:
        raise error

    monkeypatch.setattr(app.extensions["celery"].backend, "get", fail)  # the read GET /task/<id> makes
    response = app.test_client().get(f"/task/{uuid.uuid4()}")
    assert response.status_code == status
    if status == 503:  # the result backend's error, named so (not left to the limits' handler of Redis errors)
        assert_unavailable(response, "result backend")


DATABASE_FAILURE = database.OperationalError("SELECT 1", {}, Exception("server closed the connection"))


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (DATABASE_FAILURE, 503),
        (database.InterfaceError("SELECT 1", {}, Exception("connection already closed")), 503),
        (BackendGetMetaError("failed to get meta", task_id="x"), 503),
        (database.ProgrammingError("SELECT 1", {}, Exception('relation "celery_taskmeta" does not exist')), 500),
    ],
    ids=["operational", "interface", "gave-up-retrying", "programming-error-is-a-bug"],
)
def test_database_errors_are_503_but_bugs_are_not(
    write_config: WriteConfig, monkeypatch: pytest.MonkeyPatch, error: Exception, status: int
) -> None:
    """A database that cannot be reached or gave up is unavailable; a bad query stays a bug (500)."""
    app = app_with(write_config, result_backend=REFUSING_DATABASE)

    def fail(*args: object) -> None:
        raise error

    monkeypatch.setattr(app.extensions["celery"].backend, "task_result_exists", fail)
    assert app.test_client().get(f"/task/{uuid.uuid4()}").status_code == status


@pytest.mark.parametrize(
    ("broker_url", "text", "masked"),
    [
        ("amqp://u:p%40ss@h//", "auth failed for p@ss", "auth failed for **"),
        ("amqp://u:one@a//;amqp://u:two@b//", "tried one, then two", "tried **, then **"),
    ],
    ids=["percent-encoded", "failover-list"],
)
def test_masking_covers_encoded_passwords_and_failover_lists(
    write_config: WriteConfig, broker_url: str, text: str, masked: str
) -> None:
    """Passwords are masked as libraries print them, for every URL of a failover list."""
    assert mask_secrets(text, app_with(write_config, broker_url=broker_url).extensions["celery"]) == masked


def test_an_error_without_a_message_is_named_by_its_type(
    write_config: WriteConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An exception with no text still says what it was: its type alone."""
    client = app_with(write_config).test_client()

    def time_out(*args: object) -> None:
        raise TimeoutError

    monkeypatch.setattr("app.web.dependencies._ping_broker", time_out)
    assert client.get("/readyz", base_url=INTERNAL).json["checks"] == {
        "broker": "unreachable: TimeoutError",
        "result_backend": "ok",
    }


def test_readyz_tries_a_refusing_broker_once(write_config: WriteConfig, monkeypatch: pytest.MonkeyPatch) -> None:
    """One connection attempt, no retries: /readyz answers as soon as the broker refuses."""
    client = app_with(write_config, broker_url=REFUSING_BROKER).test_client()
    attempts = broker_connection_attempts(monkeypatch, limit=2)
    monkeypatch.setattr(kombu_functional, "sleep", lambda seconds: None)  # a retry would not wait here
    assert (
        client.get("/readyz", base_url=INTERNAL).json["checks"]["broker"].startswith("unreachable: OperationalError: ")
    )
    assert attempts == ["127.0.0.1"]


@pytest.mark.parametrize("loaded", [True, False], ids=["database-backend-loaded", "not-loaded"])
def test_other_backends_never_take_database_errors_for_an_outage(
    write_config: WriteConfig, monkeypatch: pytest.MonkeyPatch, loaded: bool
) -> None:
    """With another result backend, SQLAlchemy's errors stay bugs, even where a database backend was loaded."""
    if loaded:
        importlib.import_module("celery.backends.database")
    else:
        monkeypatch.delitem(sys.modules, "celery.backends.database", raising=False)
    errors = backend_errors(app_with(write_config).extensions["celery"].backend)
    assert OSError in errors
    assert not [error for error in errors if issubclass(error, database.SQLAlchemyError)]


@pytest.mark.parametrize(
    ("broker_url", "outcome", "published", "check"),
    [
        (REFUSING_BROKER, None, 1, "ok"),
        (REFUSING_BROKER, BrokerBlocked(REASON), 1, f"blocked: {REASON}"),
        ("memory://", None, 0, "ok"),
    ],
    ids=["rabbitmq-confirms", "rabbitmq-blocks", "other-brokers-not-probed"],
)
def test_readyz_publishes_to_rabbitmq_which_alone_tells_it_is_blocking_publishers(
    write_config: WriteConfig,
    monkeypatch: pytest.MonkeyPatch,
    broker_url: str,
    outcome: Exception | None,
    published: int,
    check: str,
) -> None:
    """On RabbitMQ: a message that goes nowhere, its confirm awaited CONFIRM_TIMEOUT at most; a block shows."""
    client = app_with(write_config, broker_url=broker_url).test_client()
    publishes: list[tuple[Any, ...]] = []

    class Channel:
        def prepare_message(self, body: bytes) -> tuple[str, bytes]:
            return ("message", body)

        def basic_publish(self, *args: Any, **options: Any) -> None:
            publishes.append((*args, options))
            if outcome is not None:
                raise outcome

    monkeypatch.setattr(Connection, "ensure_connection", lambda connection, **options: connection)
    monkeypatch.setattr(Connection, "default_channel", Channel())
    assert client.get("/readyz", base_url=INTERNAL).json["checks"]["broker"] == check
    assert publishes == [(("message", b""), "", "", {"confirm_timeout": dependencies.CONFIRM_TIMEOUT})] * published
