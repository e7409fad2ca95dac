"""Request and task ids on every log line, web and worker (app/observability/logs.py); one log setup."""

from __future__ import annotations

import logging
import re
import uuid

import pytest
from celery import Task, shared_task
from celery.app.log import TaskFormatter
from celery.contrib.testing.mocks import TaskMessage
from celery.signals import after_setup_task_logger
from celery.utils.functional import LRUCache
from flask import Flask

from app import create_app
from app.observability import logs
from app.observability.logs import Formatter, RequestWithId, configure_logging, current_request_id
from tests.unit.conftest import WriteConfig


@shared_task(bind=True)
def logging_task(self: object) -> None:
    """Log one line from inside a task."""
    logging.getLogger("tests.logging_task").warning("inside")


@shared_task(bind=True)
def logs_as_celery_does(self: Task) -> None:
    """Log a line about itself as Celery's tracer logs "succeeded": with its id as `data`."""
    logging.getLogger("tests.as_celery").warning("succeeded", extra={"data": {"id": self.request.id}})


@shared_task
def seen_request_id() -> str | None:
    """Answer the request id the running task sees."""
    logging.getLogger("tests.request_id").warning("inside the task")
    return current_request_id()


def test_lines_inside_a_task_carry_its_id(app: Flask, caplog: pytest.LogCaptureFixture) -> None:
    """A record logged by a running task gets its id; one logged outside gets '-'."""
    caplog.handler.setFormatter(Formatter())
    logging.getLogger("tests").warning("outside")
    result = app.extensions["celery"].tasks[logging_task.name].apply_async(task_id="task-42")
    result.get()
    ids = {record.getMessage(): record.task_id for record in caplog.records if record.name.startswith("tests")}
    assert ids == {"outside": "-", "inside": "task-42"}


def test_configure_logging_writes_info_lines_to_stderr_once(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """First call: INFO and above on stderr, each line with its time, level, process, logger, request and task.

    Uncoloured, warnings too. A later call finds a setup and leaves it alone: no line is written twice.
    """
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [])
    monkeypatch.setattr(root, "level", logging.WARNING)
    configure_logging()
    configure_logging()
    logger = logging.getLogger("tests.configured")
    logger.debug("not shown")
    logger.info("shown")
    logger.warning("warned")
    line = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} %s MainProcess tests\.configured \[-\] \[-\] \[-\] %s\n"
    assert re.fullmatch(line % ("INFO", "shown") + line % ("WARNING", "warned"), capsys.readouterr().err)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [({"request_id": "abc-123", "client": "shop"}, "[abc-123] [shop]"), ({}, "[-] [-]")],
    ids=["carried", "none"],
)
def test_the_workers_own_lines_about_a_received_task_name_its_request(
    app: Flask, headers: dict[str, str], expected: str
) -> None:
    """Celery logs "received" outside the task, with its id as `data`: the line gets what its message carried."""
    task_id = str(uuid.uuid4())
    options = headers
    RequestWithId(TaskMessage(logging_task.name, id=task_id, **options), app=app.extensions["celery"])
    record = logging.LogRecord("celery.worker.strategy", logging.INFO, __file__, 1, "received", None, None)
    record.data = {"id": task_id, "name": logging_task.name}
    line = Formatter().format(record)
    assert line.endswith(f"celery.worker.strategy {expected} [{task_id}] received")


def test_celerys_lines_about_the_running_task_name_the_request_it_runs_for(
    app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    """Its "succeeded" line, logged in the task: the task's request id, as in a pool process that received nothing."""
    caplog.handler.setFormatter(Formatter())
    with app.test_request_context(headers={"X-Request-ID": "abc-123"}):
        app.preprocess_request()
        app.extensions["celery"].tasks[logs_as_celery_does.name].apply_async(task_id="task-9").get()
    (record,) = [record for record in caplog.records if record.name == "tests.as_celery"]
    assert (record.request_id, record.task_id) == ("abc-123", "task-9")  # type: ignore[attr-defined]


def test_the_worker_remembers_a_bounded_number_of_request_ids(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    """The oldest go first (RECEIVED_KEPT of them are kept); a task without a request id takes no room."""
    assert logs._received.limit == logs.RECEIVED_KEPT
    monkeypatch.setattr(logs, "_received", LRUCache(limit=2))
    for number in range(4):
        headers = {"request_id": f"request-{number}"} if number < 3 else {}
        RequestWithId(TaskMessage(logging_task.name, id=f"task-{number}", **headers), app=app.extensions["celery"])
    assert list(logs._received.items()) == [
        ("task-1", {"request_id": "request-1"}),
        ("task-2", {"request_id": "request-2"}),
    ]


def test_the_workers_task_loggers_write_the_factorys_format() -> None:
    """Celery gives get_task_logger()'s loggers a handler with its task format: it takes this one; others stay."""
    logger = logging.Logger("tests.task_logger")
    celerys, users = logging.NullHandler(), logging.NullHandler()
    celerys.setFormatter(TaskFormatter("%(message)s"))
    users.setFormatter(custom := logging.Formatter("%(message)s"))
    logger.handlers = [celerys, users]
    after_setup_task_logger.send(
        sender=None, logger=logger, loglevel=logging.INFO, logfile=None, format="", colorize=False
    )
    assert (type(celerys.formatter), users.formatter) == (Formatter, custom)


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
    caplog.handler.setFormatter(Formatter())
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
