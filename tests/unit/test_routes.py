"""The task API's contract: codes, JSON bodies, Location (app/routes.py, app/web/task_api.py, contract.py)."""

from __future__ import annotations

import io
import re
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from celery import Task, shared_task
from celery.app.task import Context
from celery.exceptions import SoftTimeLimitExceeded, TaskRevokedError, TimeLimitExceeded
from flask import Blueprint, Flask
from flask.testing import FlaskClient
from kombu.exceptions import OperationalError
from pydantic import BaseModel

from app import create_app, routes, tasks
from app.tasking import ClientError, TransientError
from app.web import task_api
from app.web.task_api import expose
from tests.tasks import counted_task, echoed_task, failing_task, flaky_task, summed_task
from tests.unit.conftest import EAGER, IN_MEMORY_CONFIG, WriteConfig, owned

# Nothing listens on port 1: connections are refused at once, without any server.
REFUSING_BACKEND = "redis://127.0.0.1:1/0"


def test_post_answers_202_with_id_state_and_location(client: FlaskClient) -> None:
    """POST /task/ queues the sample task: 202, its id and state, Location to follow."""
    response = client.post("/task/")
    assert response.status_code == 202
    task_id = response.json["task_id"]
    assert uuid.UUID(task_id) and response.json["state"] == "PENDING"
    assert response.headers["Location"] == f"/task/{task_id}"


def test_finished_task_reports_success_with_iso_utc_datetime(client: FlaskClient) -> None:
    """GET on a finished task: 200, SUCCESS and an ISO-8601 UTC datetime."""
    location = client.post("/task/").headers["Location"]
    response = client.get(location)
    assert response.status_code == 200
    assert response.json["state"] == "SUCCESS"
    assert response.json["task_id"] == location.rsplit("/", 1)[1]
    assert datetime.fromisoformat(response.json["result"]).utcoffset() == UTC.utcoffset(None)


def test_failed_task_reports_type_and_a_generic_message_only(write_config: WriteConfig) -> None:
    """GET on a failed task: FAILURE with the exception's type and a message that gives nothing of it away."""
    write_config()
    app = create_app({"CELERY": {**EAGER, "task_eager_propagates": False}})
    with app.app_context():
        task_id = app.extensions["celery"].tasks[failing_task.name].delay(message="disk full").id
    response = app.test_client().get(f"/task/{task_id}")
    assert response.status_code == 200
    assert response.json == {
        "task_id": task_id,
        "state": "FAILURE",
        "error": {"type": "ValueError", "message": "The task failed; the service's logs say why, under its task id."},
    }


def test_queued_task_reports_pending_not_404(write_config: WriteConfig) -> None:
    """A task still waiting in the queue is known: 200 PENDING."""
    write_config()
    client = create_app().test_client()  # not eager: the task stays in the memory queue
    task_id = client.post("/task/").json["task_id"]
    response = client.get(f"/task/{task_id}")
    assert (response.status_code, response.json) == (200, {"task_id": task_id, "state": "PENDING"})


@pytest.mark.parametrize(
    "path", [f"/task/{uuid.uuid4()}", "/task/not-a-task-id", "/nowhere"], ids=["unknown-id", "malformed-id", "no-route"]
)
def test_unknown_task_or_path_is_404_json(client: FlaskClient, path: str) -> None:
    """Celery says PENDING for any id; the API says 404 for ids it never accepted."""
    response = client.get(path)
    assert response.status_code == 404
    assert response.is_json and response.json["error"]["code"] == 404


@pytest.mark.parametrize("method", ["GET", "DELETE"])
def test_an_id_never_submitted_is_404_saying_so(client: FlaskClient, method: str) -> None:
    """GET or DELETE on a well-formed id the API never accepted: 404 naming the id, and that results expire."""
    task_id = str(uuid.uuid4())
    response = client.open(f"/task/{task_id}", method=method)
    assert (response.status_code, response.json["error"]["message"]) == (
        404,
        f"No task with id {task_id} was submitted (or its result expired).",
    )


def test_a_running_task_reports_its_progress(app: Flask, client: FlaskClient) -> None:
    """GET on a task that reported progress: PROGRESS and a number from 0 to 1."""
    task_id = str(uuid.uuid4())
    app.extensions["celery"].backend.store_result(
        owned(app, task_id), {"progress": 0.3}, "PROGRESS"
    )  # as the task does
    assert client.get(f"/task/{task_id}").json == {"task_id": task_id, "state": "PROGRESS", "progress": 0.3}


def test_a_task_waiting_for_its_next_attempt_reports_the_failed_one(app: Flask, client: FlaskClient) -> None:
    """GET on a task to be retried: RETRY, which attempt failed (1-based) and with what."""
    task_id = str(uuid.uuid4())
    request = Context(id=task_id, retries=1, task=flaky_task.name, args=(1,), kwargs={}, delivery_info={})
    app.extensions["celery"].backend.mark_as_retry(
        owned(app, task_id), TransientError("dependency away"), request=request
    )
    assert client.get(f"/task/{task_id}").json == {
        "task_id": task_id,
        "state": "RETRY",
        "attempt": 2,
        "error": {
            "type": "TransientError",
            "message": "The task failed; the service's logs say why, under its task id.",
        },
    }


@pytest.fixture
def queued(write_config: WriteConfig) -> tuple[FlaskClient, str]:
    """A client of a non-eager app and the id of a task it queued (the memory queue: no worker)."""
    write_config()
    client = create_app().test_client()
    return client, client.post("/task/").json["task_id"]


def test_cancelling_a_queued_task_revokes_it_and_a_second_cancel_answers_the_same(
    queued: tuple[FlaskClient, str],
) -> None:
    """DELETE on a queued task: 202 REVOKED, stored for GET (and for the worker); again: the same."""
    client, task_id = queued
    for _ in range(2):
        response = client.delete(f"/task/{task_id}")
        assert (response.status_code, response.json) == (202, {"task_id": task_id, "state": "REVOKED"})
        assert client.get(f"/task/{task_id}").json == {"task_id": task_id, "state": "REVOKED"}


def test_cancelling_tells_the_workers_to_stop_it(
    queued: tuple[FlaskClient, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The workers are told too, to drop its message as it arrives; nothing is killed (no `terminate`)."""
    client, task_id = queued
    sent: list[tuple[object, dict[str, object]]] = []
    control = client.application.extensions["celery"].control
    monkeypatch.setattr(control, "revoke", lambda task_id, **options: sent.append((task_id, options)))
    client.delete(f"/task/{task_id}")
    assert sent == [(task_id, {})]


def test_a_cancelled_task_is_stored_as_cancelled(queued: tuple[FlaskClient, str]) -> None:
    """What the record says of a cancel: a Celery client's get() raises TaskRevokedError('cancelled')."""
    client, task_id = queued
    client.delete(f"/task/{task_id}")
    revoked = client.application.extensions["celery"].AsyncResult(task_id)
    assert (revoked.state, repr(revoked.result)) == ("REVOKED", repr(TaskRevokedError("cancelled")))


def test_cancelling_with_the_result_backend_down_is_503(
    write_config: WriteConfig, caplog: pytest.LogCaptureFixture
) -> None:
    """DELETE while the result backend refuses: 503 JSON naming it, and a log line saying so."""
    write_config({**IN_MEMORY_CONFIG, "celery": {**IN_MEMORY_CONFIG["celery"], "result_backend": REFUSING_BACKEND}})
    response = create_app().test_client().delete(f"/task/{uuid.uuid4()}")
    assert (response.status_code, response.json["error"]["message"]) == (
        503,
        "The result backend is unreachable; try again later.",
    )
    assert "result backend unreachable" in [message.split(":")[0] for message in caplog.messages]


def test_cancelling_with_the_broker_down_is_503_and_the_task_stays_cancelled(
    queued: tuple[FlaskClient, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The workers cannot be told (the broker refuses): 503 naming the broker; REVOKED is stored already."""
    client, task_id = queued

    def refuse(*args: object, **kwargs: object) -> None:
        raise OperationalError("broker unreachable")

    monkeypatch.setattr(client.application.extensions["celery"].control, "revoke", refuse)
    response = client.delete(f"/task/{task_id}")
    assert (response.status_code, response.json["error"]["message"]) == (
        503,
        "The broker is unreachable; try again later.",
    )
    assert client.get(f"/task/{task_id}").json["state"] == "REVOKED"


@pytest.mark.parametrize(
    ("task", "status"), [("finished", 409), ("unknown", 404)], ids=["finished-is-409", "unknown-is-404"]
)
def test_cancelling_a_finished_or_unknown_task_changes_nothing(client: FlaskClient, task: str, status: int) -> None:
    """DELETE on a finished task: 409, still SUCCESS; on an id never submitted: 404."""
    task_id = client.post("/task/").json["task_id"] if task == "finished" else str(uuid.uuid4())
    response = client.delete(f"/task/{task_id}")
    assert (response.status_code, response.is_json) == (status, True)
    if task == "finished":
        assert response.json["error"]["message"] == (
            "The task has already finished (SUCCESS); there is nothing to cancel."
        )
        assert client.get(f"/task/{task_id}").json["state"] == "SUCCESS"


def test_wrong_method_is_405_json_with_allow(client: FlaskClient) -> None:
    """A wrong method gets 405 as JSON and still lists the allowed methods."""
    response = client.delete("/task/")
    assert response.status_code == 405 and response.is_json
    assert set(response.headers["Allow"].split(", ")) == {"POST", "OPTIONS"}


def test_unhandled_exception_is_500_json_without_traceback(app: Flask) -> None:
    """A bug in a view answers 500 as JSON with a generic message."""
    app.add_url_rule("/boom", view_func=lambda: 1 / 0)
    response = app.test_client().get("/boom")
    assert response.status_code == 500 and response.is_json
    assert response.json["error"]["name"] == "Internal Server Error"
    assert "ZeroDivisionError" not in response.get_data(as_text=True)


def test_healthz_answers_ok(client: FlaskClient) -> None:
    """Liveness probe: 200 JSON."""
    response = client.get("/healthz")
    assert (response.status_code, response.json) == (200, {"status": "ok"})


def chunked(size: int) -> dict[str, object]:
    """Keyword arguments for the test client: a `size`-byte "{}   ..." body sent without Content-Length."""
    return {
        "input_stream": io.BytesIO(b"{}" + b" " * (size - 2)),
        "content_type": "application/json",
        "headers": {"Transfer-Encoding": "chunked"},
        "environ_overrides": {"wsgi.input_terminated": True},  # as gunicorn and Werkzeug's server set it
    }


def test_a_body_of_known_length_is_read_no_further(client: FlaskClient) -> None:
    """The largest body taken, its length given: nothing past it is read, even at the limit.

    On a kept-alive connection (Werkzeug's server, cli.py) what follows is the client's next
    request: a read there would wait for it, or take its first bytes for more body (413).
    """
    largest = b"{}" + b" " * (16 * 1024 - 2)
    connection = io.BytesIO(largest + b"GET /healthz HTTP/1.1\r\n")
    known_length = {"CONTENT_LENGTH": str(len(largest))}  # the test client would count the whole stream
    response = client.post(
        "/task/", input_stream=connection, content_type="application/json", environ_overrides=known_length
    )
    assert (response.status_code, connection.read()) == (202, b"GET /healthz HTTP/1.1\r\n")


class EndlessBody(io.RawIOBase):
    """A chunked body that never ends: read to its end, it would hold the request, and fill its memory, forever."""

    def readable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return 0  # the test client measures a stream's length: none known here

    def readinto(self, buffer: Any) -> int:
        buffer[:] = b" " * len(buffer)
        return len(buffer)

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            raise AssertionError("read to the end of an endless body")
        return super().read(size)


def test_an_endless_chunked_body_is_refused_without_reading_it_all(client: FlaskClient) -> None:
    """Past the limit a body of unknown length is 413 once one more byte came: the rest is never waited for."""
    body = {key: value for key, value in chunked(1).items() if key != "input_stream"}
    response = client.post("/task/", input_stream=EndlessBody(), **body)
    assert (response.status_code, response.json["error"]["name"]) == (413, "Request Entity Too Large")


def rewind(body: dict[str, object]) -> None:
    """Parametrize builds a chunked body's stream once; each run (mutmut reruns) reads it from the start."""
    stream = body.get("input_stream")
    if isinstance(stream, io.BytesIO):
        stream.seek(0)


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (
            {"json": {"seconds": 1, "b": 2, "a": 3}},
            400,
            "Parameter a: Extra inputs are not permitted; parameter b: Extra inputs are not permitted.",
        ),
        ({"json": {"seconds": "5"}}, 400, "Parameter seconds: Input should be a valid number."),
        ({"json": {"seconds": True}}, 400, "Parameter seconds: Input should be a valid number."),
        ({"json": {"seconds": -0.001}}, 400, "Parameter seconds: Input should be greater than or equal to 0."),
        ({"json": {"seconds": 240.001}}, 400, "Parameter seconds: Value error, expected a number from 0 to 240."),
        ({"data": '{"seconds": NaN}', "content_type": "application/json"}, 400, "The body is not valid JSON."),
        ({"json": [1]}, 400, "The body must be a JSON object."),
        ({"data": "{bad", "content_type": "application/json"}, 400, "The body is not valid JSON."),
        ({"data": "[" * 5000, "content_type": "application/json"}, 400, "The body is not valid JSON."),
        (
            {"data": "seconds=1", "content_type": "application/x-www-form-urlencoded"},
            415,
            "Send parameters as application/json.",
        ),
        (
            {"data": "{}" + " " * (16 * 1024 - 1), "content_type": "application/json"},  # one byte too many
            413,
            "The data value transmitted exceeds the capacity limit.",
        ),
        (chunked(16 * 1024 + 1), 413, "The data value transmitted exceeds the capacity limit."),
    ],
    ids=[
        "unknown-parameter",
        "seconds-string",
        "seconds-boolean",
        "seconds-negative",
        "seconds-past-the-maximum",
        "seconds-nan",
        "not-an-object",
        "malformed-json",
        "nested-too-deep",
        "form-encoded",
        "oversized",
        "oversized-chunked",
    ],
)
def test_bad_post_body_is_4xx_json_and_queues_nothing(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch, body: dict[str, object], status: int, message: str
) -> None:
    """A body the task cannot take answers the right 4xx as JSON, before anything is queued."""
    queued: list[object] = []
    sample = app.extensions["celery"].tasks[tasks.sample_task.name]
    monkeypatch.setattr(type(sample), "apply_async", lambda *args, **kwargs: queued.append(kwargs))
    rewind(body)
    response = client.post("/task/", **body)
    assert (response.status_code, response.is_json, queued) == (status, True, [])
    assert response.json["error"]["message"] == message


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"json": {}},
        {"data": "{}" + " " * (16 * 1024 - 2), "content_type": "application/json"},
        chunked(16 * 1024),
        {"json": {"seconds": 0}},
        {"json": {"seconds": 240}},
        {"json": {"seconds": None}},
    ],
    ids=[
        "no-body",
        "empty-object",
        "largest-accepted",
        "largest-accepted-chunked",
        "seconds-0",
        "seconds-maximum",
        "seconds-null-is-the-configured",
    ],
)
def test_post_accepts_no_body_an_empty_object_or_seconds(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch, body: dict[str, object]
) -> None:
    """The bodies the sample task can take are accepted (the maximum is the config's, 240 by default)."""
    monkeypatch.setattr(tasks.time, "sleep", lambda seconds: None)
    rewind(body)
    assert client.post("/task/", **body).status_code == 202


def app_exposing(write_config: WriteConfig, rule: str, task: Task) -> Flask:
    """An eager app that also serves `task` at `rule`, exposed on a blueprint of the test's own."""
    write_config()
    bp = Blueprint(rule.strip("/"), __name__)
    expose(bp, rule, task)
    app = create_app({"CELERY": EAGER})
    app.register_blueprint(bp)
    return app


def test_a_parameter_inside_a_list_is_named_by_its_place(write_config: WriteConfig) -> None:
    """An exposed task's nested parameter at fault is named with its path (numbers.1), in a 400."""
    app = app_exposing(write_config, "/summed/", summed_task)
    response = app.test_client().post("/summed/", json={"numbers": [1, "2"]})
    assert (response.status_code, response.json["error"]["message"]) == (
        400,
        "Parameter numbers.1: Input should be a valid integer.",
    )
    assert app.test_client().post("/summed/", json={"numbers": [1, 2]}).status_code == 202


def test_a_parameter_without_an_annotation_takes_any_json(write_config: WriteConfig) -> None:
    """No annotation, no check: whatever JSON value the body gives is passed on."""
    app = app_exposing(write_config, "/echoed/", echoed_task)
    for value in (None, 1, "one", [1], {"one": 1}):
        task_id = app.test_client().post("/echoed/", json={"value": value}).json["task_id"]
        assert app.extensions["celery"].AsyncResult(task_id).result == value


@pytest.mark.parametrize("body", [{}, {"seconds": None}], ids=["left-out", "given"])
def test_a_parameter_the_body_leaves_out_is_left_out_of_the_message(
    client: FlaskClient, sent: list[dict[str, Any]], body: dict[str, Any]
) -> None:
    """The message carries the body's arguments only, no defaults: the task applies its own where it runs."""
    assert client.post("/task/", json=body).status_code == 202
    assert [message["kwargs"] for message in sent] == [body]


def test_a_tasks_parameter_model_is_made_once_as_it_is_exposed(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The model of a task's parameters is built as the app is made, not at each POST."""
    monkeypatch.setattr(task_api, "signature_model", None)
    assert [client.post("/task/", json={"seconds": 0}).status_code for _ in range(2)] == [202, 202]


def test_a_post_waits_at_most_the_confirm_timeout(client: FlaskClient, sent: list[dict[str, Any]]) -> None:
    """The task is published asking RabbitMQ's confirm within 0.5 s (a stalled broker: integration tier, 503)."""
    assert client.post("/task/", json={"seconds": 1}).status_code == 202
    assert [message["confirm_timeout"] for message in sent] == [0.5]


def test_post_without_the_trailing_slash_is_served_not_redirected(client: FlaskClient) -> None:
    """`POST /task` queues the task as `POST /task/` does: no redirect, whose body is HTML."""
    response = client.post("/task")
    assert (response.status_code, response.is_json) == (202, True)


def test_openapi_description_covers_every_route(app: Flask, client: FlaskClient) -> None:
    """GET /openapi.json describes every route and method the app serves (but itself)."""
    spec = client.get("/openapi.json").json
    described = {(path, method.upper()) for path, item in spec["paths"].items() for method in item}
    served = {
        (re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule), method)
        for rule in app.url_map.iter_rules()
        if rule.endpoint not in ("static", "contract.openapi")
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    assert spec["openapi"].startswith("3.")
    assert described == served


def test_one_apps_description_leaves_anothers_alone(app: Flask) -> None:
    """An app exposing one more task describes it; an app described after it describes only its own tasks."""
    extra = Blueprint("extra", __name__)
    expose(extra, "/count/", counted_task)
    app.register_blueprint(extra)
    assert "/count/" in app.test_client().get("/openapi.json").json["paths"]
    other = create_app({"CELERY": EAGER})
    assert "/count/" not in other.test_client().get("/openapi.json").json["paths"]


class InvoiceLine(BaseModel):
    """A structure of a parameter's own: the description defines it once, among its components."""

    item: str
    quantity: int


@shared_task(name="invoice")  # type: ignore[untyped-decorator]  # a name without a module
def invoice_task(lines: list[InvoiceLine]) -> None:
    """A task whose parameter is a list of such structures: only its signature counts here."""


def test_a_parameters_own_structure_is_described_once_among_the_components(app: Flask) -> None:
    """The operation's schema refers to it by $ref into components/schemas, where it is; it keeps no $defs."""
    extra = Blueprint("extra", __name__)
    expose(extra, "/lines/", invoice_task)  # a path of its own: a service's first task takes /invoices/
    app.register_blueprint(extra)
    spec = app.test_client().get("/openapi.json").json
    schema = spec["paths"]["/lines/"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert ("$defs" in schema, schema["properties"]["lines"]["items"]) == (
        False,
        {"$ref": "#/components/schemas/InvoiceLine"},
    )
    assert spec["components"]["schemas"]["InvoiceLine"]["required"] == ["item", "quantity"]


@pytest.mark.parametrize(
    ("failures", "status"), [("0.0", 202), ("0e3", 202), ("0.5", 400)], ids=["point-zero", "exponent", "fraction"]
)
def test_an_integral_number_is_an_integer_as_json_schema_counts_it(app: Flask, failures: str, status: int) -> None:
    """An ``int`` parameter described as ``integer`` takes 0.0 and 0e3 (the integer 0), not 0.5."""
    extra = Blueprint("extra", __name__)
    expose(extra, "/flaky/", flaky_task)
    app.register_blueprint(extra)
    client = app.test_client()
    response = client.post("/flaky/", data=f'{{"failures": {failures}}}', content_type="application/json")
    assert response.status_code == status
    if status == 202:
        assert client.get(response.headers["Location"]).json["result"] == 1  # no failure: the first attempt
    else:
        assert response.json["error"]["message"] == "Parameter failures: Input should be a valid integer."


def test_openapi_description_requires_a_body_where_a_task_has_required_parameters(app: Flask) -> None:
    """An exposed task with required parameters needs a body; the sample's are all optional, so it needs none."""
    extra = Blueprint("extra", __name__)
    expose(extra, "/count/", counted_task)
    app.register_blueprint(extra)
    paths = app.test_client().get("/openapi.json").json["paths"]
    required = {path: paths[path]["post"]["requestBody"]["required"] for path in ("/count/", "/task/")}
    assert required == {"/count/": True, "/task/": False}


def test_openapi_description_states_the_configured_maximum(app: Flask, client: FlaskClient) -> None:
    """The `seconds` a POST may ask for is bounded by this app's config, and the description says so."""
    app.config["SAMPLE_TASK_MAX_SECONDS"] = 12.5
    body = client.get("/openapi.json").json["paths"]["/task/"]["post"]["requestBody"]["content"]["application/json"]
    seconds = {"type": "number", "minimum": 0, "maximum": 12.5}
    assert body["schema"]["properties"]["seconds"]["anyOf"] == [seconds, {"type": "null"}]
    assert client.post("/task/", json={"seconds": 12.6}).status_code == 400


def test_an_exposed_tasks_operation_is_named_after_the_task(client: FlaskClient) -> None:
    """Its endpoint, and so its operationId, is `start_` and the task's own name, without its module."""
    operation = client.get("/openapi.json").json["paths"]["/task/"]["post"]
    named = (operation["operationId"], operation["summary"])
    assert named == ("tasks.start_sample_task", f"Start {tasks.sample_task.name}")


def test_a_task_named_without_a_module_is_exposed_under_its_whole_name(write_config: WriteConfig) -> None:
    """A task named without a dot (``@shared_task(name="invoice")``): its endpoint is start_invoice."""
    app = app_exposing(write_config, "/unqualified/", invoice_task)
    assert [rule.endpoint for rule in app.url_map.iter_rules() if rule.rule == "/unqualified/"] == [
        "unqualified.start_invoice"
    ]


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (TimeLimitExceeded(2), "The task was killed at its hard time limit (2 s)."),
        (TimeLimitExceeded(), "The task was killed at its hard time limit."),
        (SoftTimeLimitExceeded(), "The task was interrupted at its soft time limit."),
        (ValueError("disk full"), "The task failed; the service's logs say why, under its task id."),
        (ClientError("no such invoice"), "no such invoice"),
    ],
    ids=["hard-limit", "hard-limit-no-value", "soft-limit", "other", "meant-for-the-client"],
)
def test_failure_messages_say_what_happened(error: BaseException, message: str) -> None:
    """Time-limit errors read as sentences; a ClientError as its message; any other error says nothing of it."""
    assert routes._describe_failure(error) == message


def test_failure_message_masks_passwords(write_config: WriteConfig) -> None:
    """A ClientError that repeats a configured URL shows its password as **."""
    write_config({**IN_MEMORY_CONFIG, "celery": {**IN_MEMORY_CONFIG["celery"], "broker_url": "memory://u:pw-123@x/"}})
    app = create_app({"CELERY": {**EAGER, "task_eager_propagates": False}})
    with app.app_context():
        task_id = app.extensions["celery"].tasks[failing_task.name].delay("cannot reach memory://u:pw-123@x/", True).id
    error = app.test_client().get(f"/task/{task_id}").json["error"]
    assert error == {"type": "ClientError", "message": "cannot reach memory://u:**@x/"}


def test_a_database_result_backend_serves_the_api(write_config: WriteConfig, tmp_path: Path) -> None:
    """Celery's SQLAlchemy backend (SQLite here): the id record, 404 for unknown ids, SUCCESS."""
    celery = {**IN_MEMORY_CONFIG["celery"], "result_backend": f"db+sqlite:///{tmp_path}/results.db"}
    write_config({**IN_MEMORY_CONFIG, "celery": celery})
    client = create_app({"CELERY": EAGER}).test_client()
    location = client.post("/task/").headers["Location"]
    assert client.get(location).json["state"] == "SUCCESS"
    assert client.get(f"/task/{uuid.uuid4()}").status_code == 404
