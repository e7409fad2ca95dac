"""Who may start, see and cancel tasks (app/web/auth.py): bearer tokens, a task its client's, its name on log lines."""

from __future__ import annotations

import base64
import hashlib
import secrets
import uuid

import pytest
from flask import Blueprint, Flask
from flask.testing import FlaskClient

from app import create_app
from app.web.auth import new_token
from app.web.task_api import expose
from tests.logs import capturing_task_lines
from tests.tasks import context_probe, counted_task
from tests.unit.conftest import CLIENT, EAGER, OTHER_TOKEN, TOKEN, WriteConfig

NEVER_SUBMITTED = "No task with id {} was submitted (or its result expired)."


@pytest.fixture
def other(app: Flask) -> FlaskClient:
    """A test client of `app` sending OTHER_CLIENT's token."""
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {OTHER_TOKEN}"
    return client


@pytest.fixture
def anonymous(app: Flask) -> FlaskClient:
    """A test client of `app` sending no token at all."""
    client = app.test_client()
    del client.environ_base["HTTP_AUTHORIZATION"]
    return client


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong-token", f"Basic {TOKEN}", f"Bearer {TOKEN}x", "Bearer", ""],
    ids=["none", "unknown-token", "other-scheme", "token-with-more", "scheme-only", "empty"],
)
@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/task/"), ("GET", "/task/{id}"), ("DELETE", "/task/{id}"), ("GET", "/no-such-route")],
    ids=["start", "status", "cancel", "unknown-route"],
)
def test_a_request_without_a_known_token_is_401_json_asking_for_a_bearer_token(
    anonymous: FlaskClient, authorization: str | None, method: str, path: str
) -> None:
    """No token, an unknown one, another scheme: 401 as JSON with WWW-Authenticate: Bearer, and nothing queued."""
    headers = {} if authorization is None else {"Authorization": authorization}
    response = anonymous.open(path.format(id=uuid.uuid4()), method=method, headers=headers)
    assert (response.status_code, response.headers["WWW-Authenticate"], response.json["error"]["message"]) == (
        401,
        "Bearer",
        "Send a valid token: Authorization: Bearer <token>.",
    )
    assert "X-Request-ID" in response.headers


@pytest.mark.parametrize(
    "authorization", [f"bearer {TOKEN}", f"Bearer  {TOKEN}", f"BEARER \t{TOKEN}"], ids=["lower", "spaces", "tab"]
)
def test_the_scheme_is_read_in_any_case_and_the_token_after_any_blanks(
    anonymous: FlaskClient, authorization: str
) -> None:
    """As RFC 9110 reads credentials: the scheme case-insensitive, one or more blanks before the token."""
    assert anonymous.post("/task/", json={"seconds": 0}, headers={"Authorization": authorization}).status_code == 202


def test_a_new_token_is_32_random_bytes_and_its_line_holds_only_its_digest() -> None:
    """new_token(): 256 bits, URL-safe base64 (no padding); two calls differ; the config line names the client."""
    (token, line), (again, _) = new_token("billing"), new_token("billing")
    assert len(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))) == 32
    assert token != again and "=" not in token
    assert line == f'billing: "sha256:{hashlib.sha256(token.encode()).hexdigest()}"'


def test_a_new_token_is_32_bytes_whatever_python_s_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """new_token() asks for 32 bytes: `secrets`' default (32 today) "is subject to change at any time" (its docs)."""
    monkeypatch.setattr(secrets, "DEFAULT_ENTROPY", 16)
    token, _ = new_token("billing")
    assert len(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))) == 32


def test_any_exposed_task_takes_a_token(app: Flask, anonymous: FlaskClient, client: FlaskClient) -> None:
    """A task exposed on a blueprint of its own is guarded like the sample: 401 without a token, 202 with one."""
    extra = Blueprint("extra", __name__)
    expose(extra, "/count/", counted_task)
    app.register_blueprint(extra)
    assert anonymous.post("/count/", json={"key": "k"}).status_code == 401
    assert client.post("/count/", json={"key": "k"}).status_code == 202


@pytest.mark.parametrize(
    "path", ["/healthz", "/readyz", "/openapi.json", "/"], ids=["healthz", "readyz", "openapi", "page"]
)
def test_the_probes_the_description_and_the_page_need_no_token(anonymous: FlaskClient, path: str) -> None:
    """What load balancers, orchestrators and browsers fetch before any token answers without one."""
    assert anonymous.get(path).status_code == 200


@pytest.mark.parametrize("method", ["GET", "DELETE"])
def test_another_clients_task_is_404_exactly_as_one_never_submitted(
    client: FlaskClient, other: FlaskClient, method: str
) -> None:
    """GET and DELETE of a task another client started: the same 404 as for an unknown id; the task is untouched."""
    task_id = client.post("/task/", json={"seconds": 0}).json["task_id"]
    never = str(uuid.uuid4())
    theirs, unknown = other.open(f"/task/{task_id}", method=method), other.open(f"/task/{never}", method=method)
    assert (theirs.status_code, theirs.json["error"]["message"]) == (404, NEVER_SUBMITTED.format(task_id))
    assert (unknown.status_code, unknown.json["error"]["message"]) == (404, NEVER_SUBMITTED.format(never))
    assert client.get(f"/task/{task_id}").json["state"] == "SUCCESS"


def test_a_task_started_without_a_client_belongs_to_none(app: Flask, client: FlaskClient) -> None:
    """A task sent by code (a script, beat) with authentication on: no client sees it (404)."""
    with app.app_context():
        task_id = app.extensions["celery"].tasks[context_probe.name].delay().id
    assert client.get(f"/task/{task_id}").status_code == 404


def test_idempotency_keys_are_each_clients_own(client: FlaskClient, other: FlaskClient) -> None:
    """The same Idempotency-Key from two clients: two tasks, each its client's."""
    headers = {"Idempotency-Key": "order-7"}
    mine, theirs = (c.post("/task/", json={"seconds": 0}, headers=headers).json["task_id"] for c in (client, other))
    assert mine != theirs
    assert client.post("/task/", json={"seconds": 0}, headers=headers).json["task_id"] == mine


def test_the_client_is_on_the_log_lines_of_its_requests_and_its_tasks_and_its_token_on_none(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    """Every line logged for a request and the task it starts names the client; the token appears nowhere."""
    with capturing_task_lines(caplog):
        task_id = client.post("/task/", json={"seconds": 0}).json["task_id"]
    lines = [record for record in caplog.records if record.name.startswith("app")]
    assert {(record.client, record.getMessage()) for record in lines} >= {  # type: ignore[attr-defined]
        (CLIENT, f"queued app.tasks.sample_task[{task_id}]"),
        (CLIENT, "sleeping for 0.0 s"),
    }
    assert TOKEN not in caplog.text


def test_a_task_started_by_a_clients_task_is_the_clients_too(app: Flask, client: FlaskClient) -> None:
    """A task that starts another passes its client on, as it does its request id."""
    extra = Blueprint("extra", __name__)
    expose(extra, "/relay/", app.extensions["celery"].tasks["tests.tasks.relay_task"])
    app.register_blueprint(extra)
    relay_id = client.post("/relay/").json["task_id"]
    probe_id = client.get(f"/task/{relay_id}").json["result"]
    assert client.get(f"/task/{probe_id}").json["state"] == "SUCCESS"


def test_without_authentication_every_client_sees_every_task(write_config: WriteConfig) -> None:
    """`auth: false` (the embedded quick start): no token asked, any task answered, as before."""
    write_config()
    client = create_app({"CELERY": EAGER}).test_client()
    task_id = client.post("/task/", json={"seconds": 0}).json["task_id"]
    assert client.get(f"/task/{task_id}").json["state"] == "SUCCESS"
    assert client.delete(f"/task/{task_id}").status_code == 409
