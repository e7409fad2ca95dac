"""X-Request-ID (app/web/request_id.py): kept or made, sent back, carried by tasks, on log lines."""

from __future__ import annotations

import logging
import re
import uuid

import pytest
from celery import shared_task
from celery.contrib.testing.mocks import TaskMessage
from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from app.celery_app import RequestWithId
from app.logs import ContextFilter
from app.web import request_id
from app.web.request_id import current_request_id
from tests.unit.conftest import WriteConfig

GENERATED = re.compile(r"[0-9a-f]{32}")


@shared_task
def seen_request_id() -> str | None:
    """Answer the request id the running task sees."""
    logging.getLogger("tests.request_id").warning("inside the task")
    return current_request_id()


@pytest.mark.parametrize(
    "incoming",
    ["abc-123", "A.b_c-9", "x" * 128],
    ids=["dashes", "every-kind-of-character", "128-characters"],
)
def test_a_valid_incoming_id_is_kept(client: FlaskClient, incoming: str) -> None:
    """A valid X-Request-ID comes back as it was."""
    assert client.get("/healthz", headers={"X-Request-ID": incoming}).headers["X-Request-ID"] == incoming


@pytest.mark.parametrize(
    "incoming",
    [None, "", "x" * 129, "has space", "<script>", "é"],
    ids=["none", "empty", "129-characters", "space", "markup", "not-ascii"],
)
def test_a_missing_or_invalid_id_is_replaced_never_echoed(client: FlaskClient, incoming: str | None) -> None:
    """Otherwise a new id is made; the invalid one appears nowhere in the answer."""
    headers = {} if incoming is None else {"X-Request-ID": incoming}
    response = client.get("/healthz", headers=headers)
    assert GENERATED.fullmatch(response.headers["X-Request-ID"])
    assert not incoming or incoming not in response.get_data(as_text=True) + str(response.headers)


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("GET", "/nowhere", 404), ("DELETE", "/task/", 405), ("POST", "/task/?", 202)],
    ids=["404", "405", "202"],
)
def test_every_response_carries_the_id(client: FlaskClient, method: str, path: str, status: int) -> None:
    """Errors too: the id ties a client's report to the server's log lines."""
    response = client.open(path, method=method, headers={"X-Request-ID": "abc-123"})
    assert (response.status_code, response.headers["X-Request-ID"]) == (status, "abc-123")


def test_a_task_published_in_a_request_carries_its_id_in_the_message(write_config: WriteConfig) -> None:
    """The message's headers hold the id (the worker side: tests/integration/test_tasks.py)."""
    write_config()
    app = create_app()  # not eager: the message waits in the memory queue
    celery_app = app.extensions["celery"]
    with app.test_request_context(headers={"X-Request-ID": "abc-123"}):
        app.preprocess_request()
        celery_app.tasks[seen_request_id.name].apply_async(queue="request-id")
    celery_app.tasks[seen_request_id.name].apply_async(queue="request-id")  # no request: no id
    with celery_app.connection_for_read() as connection:
        queue = connection.SimpleQueue("request-id")
        headers = [queue.get(timeout=1).headers.get("request_id") for _ in range(2)]
        queue.close()
    assert headers == ["abc-123", None]


def test_a_task_run_in_the_request_sees_its_id(app: Flask) -> None:
    """Eagerly, in the request's own process, the task sees the request's id; outside any request, none."""
    celery_app = app.extensions["celery"]
    with app.test_request_context(headers={"X-Request-ID": "abc-123"}):
        app.preprocess_request()
        assert celery_app.tasks[seen_request_id.name].delay().get() == "abc-123"
    assert celery_app.tasks[seen_request_id.name].delay().get() is None


@pytest.mark.parametrize(("header", "seen"), [("abc-123", "abc-123"), (None, None)], ids=["carried", "none"])
def test_a_task_the_worker_runs_sees_the_request_id_its_message_carries(
    app: Flask, header: str | None, seen: str | None
) -> None:
    """In a worker there is no request around the task: the id comes from the message's headers, if any."""
    options = {} if header is None else {"request_id": header}
    task_id = str(uuid.uuid4())  # the in-memory backend is shared by the tests of a process
    message = TaskMessage(seen_request_id.name, id=task_id, **options)
    message.delivery_info = {"routing_key": "celery"}  # stored with the result (result_extended)
    RequestWithId(message, app=app.extensions["celery"], on_ack=lambda *args: None).execute()
    result = app.extensions["celery"].AsyncResult(task_id)  # stored by now: no waiting for it
    assert (result.state, result.result) == ("SUCCESS", seen)


def test_log_lines_carry_the_request_and_task_ids(app: Flask, caplog: pytest.LogCaptureFixture) -> None:
    """In a request and in the tasks it starts, every record names the request; elsewhere '-'."""
    caplog.handler.addFilter(ContextFilter())
    logging.getLogger("tests.request_id").warning("outside")
    with app.test_request_context(headers={"X-Request-ID": "abc-123"}):
        app.preprocess_request()
        logging.getLogger("tests.request_id").warning("in the request")
        app.extensions["celery"].tasks[seen_request_id.name].apply_async(task_id="task-7").get()
    seen = {r.getMessage(): (r.request_id, r.task_id) for r in caplog.records if r.name == "tests.request_id"}
    assert seen == {
        "outside": ("-", "-"),
        "in the request": ("abc-123", "-"),
        "inside the task": ("abc-123", "task-7"),
    }


def test_the_workers_own_lines_about_a_received_task_name_its_request(app: Flask) -> None:
    """Celery logs "received" outside the task, with its id as `data`: the line gets the id its message carried."""
    task_id = str(uuid.uuid4())
    RequestWithId(TaskMessage(seen_request_id.name, id=task_id, request_id="abc-123"), app=app.extensions["celery"])
    record = logging.LogRecord("celery.worker.strategy", logging.INFO, __file__, 1, "received", None, None)
    record.data = {"id": task_id, "name": seen_request_id.name}
    ContextFilter().filter(record)
    assert (record.request_id, record.task_id) == ("abc-123", task_id)  # type: ignore[attr-defined]


def test_the_worker_remembers_a_bounded_number_of_request_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    """The oldest go first; a task that carries neither a request id nor a client takes no room."""
    monkeypatch.setattr(request_id, "RECEIVED_KEPT", 2)
    monkeypatch.setattr(request_id, "_RECEIVED", request_id.OrderedDict())
    for number in range(3):
        request_id.remember_for_task(f"task-{number}", {"request_id": f"request-{number}", "client": f"c{number}"})
    request_id.remember_for_task("task-3", {"request_id": None, "other": "header"})
    found = [(request_id.for_task(f"task-{n}"), request_id.for_task(f"task-{n}", "client")) for n in range(4)]
    assert found == [(None, None), ("request-1", "c1"), ("request-2", "c2"), (None, None)]
