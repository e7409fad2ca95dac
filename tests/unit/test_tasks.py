"""The sample task and submission (app/tasks.py)."""

from __future__ import annotations

import logging
import uuid
from types import SimpleNamespace

import pytest
from celery.exceptions import TaskRevokedError
from flask import Flask
from flask.testing import FlaskClient
from freezegun import freeze_time
from kombu.exceptions import OperationalError

from app import create_app, tasks
from tests.tasks import flaky_task
from tests.unit.conftest import EAGER, WriteConfig


@pytest.mark.parametrize(
    ("body", "seconds"), [({}, 7), ({"json": {"seconds": 2.5}}, 2.5)], ids=["configured", "asked-for"]
)
def test_sample_task_sleeps_in_steps_reporting_progress(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch, body: dict[str, object], seconds: float
) -> None:
    """It sleeps `seconds` from the body, else from current_app.config (its app context), in ten steps."""
    slept: list[float] = []
    progress: list[object] = []
    monkeypatch.setattr(tasks.time, "sleep", slept.append)
    monkeypatch.setattr(tasks.sample_task, "update_state", lambda **state: progress.append(state))
    app.config["SAMPLE_TASK_SECONDS"] = 7
    client.post("/task/", **body)
    assert slept == [seconds / tasks.PROGRESS_STEPS] * tasks.PROGRESS_STEPS
    assert progress == [{"state": "PROGRESS", "meta": {"progress": step / 10}} for step in range(10)]


def test_a_task_of_no_seconds_reports_no_progress(client: FlaskClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """Zero seconds: no steps, no progress writes (the unit tier's config says 0)."""
    monkeypatch.setattr(tasks.sample_task, "update_state", lambda **state: pytest.fail("progress written"))
    assert client.get(client.post("/task/").headers["Location"]).json["state"] == "SUCCESS"


class BackendDown(Exception):
    """A result backend's own connection error."""


@pytest.mark.parametrize("failing", ["get_state", "update_state"], ids=["cancel-check", "progress-write"])
def test_a_task_goes_on_while_the_result_backend_is_away(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, failing: str
) -> None:
    """Its checks between steps fail (a backend restarted, a host cut off): logged, it sleeps on and succeeds."""
    slept: list[float] = []
    monkeypatch.setattr(tasks.time, "sleep", slept.append)
    target = app.extensions["celery"].backend if failing == "get_state" else tasks.sample_task

    def unreachable(*args: object, **kwargs: object) -> None:
        raise BackendDown("result backend unreachable")

    monkeypatch.setattr(target, failing, unreachable)
    # What counts is what the backend itself raises when it is down (Redis's own errors are no OSError).
    monkeypatch.setattr(app.extensions["celery"].backend, "connection_errors", (BackendDown,), raising=False)
    app.config["SAMPLE_TASK_SECONDS"] = 1
    result = tasks.sample_task.apply()
    assert result.successful()
    assert len(slept) == tasks.PROGRESS_STEPS
    warnings = [record.getMessage() for record in caplog.records if record.name == "app.tasks"]
    expected = tasks.PROGRESS_STEPS + (failing == "get_state")  # the check after the last step reads too
    assert (
        warnings
        == ["result backend unreachable (result backend unreachable): progress not recorded, cancel not looked for"]
        * expected
    )


def test_a_task_cancelled_while_it_runs_stops_and_stays_revoked(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between steps the task looks at its stored state: REVOKED stops it, and nothing overwrites it."""
    backend = app.extensions["celery"].backend
    slept: list[float] = []

    def cancel_after_the_second_step(seconds: float) -> None:
        slept.append(seconds)
        if len(slept) == 2:  # what DELETE /task/<id> stores
            backend.mark_as_revoked(tasks.sample_task.request.id, "cancelled")

    monkeypatch.setattr(tasks.time, "sleep", cancel_after_the_second_step)
    app.config["SAMPLE_TASK_SECONDS"] = 1
    location = client.post("/task/").headers["Location"]
    assert len(slept) == 2
    assert client.get(location).json == {"task_id": location.rsplit("/", 1)[1], "state": "REVOKED"}


def test_a_task_cancelled_while_it_runs_keeps_why_and_what_it_was(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its record says it was cancelled while running, and keeps its name and arguments (result_extended)."""
    backend = app.extensions["celery"].backend
    monkeypatch.setattr(  # DELETE /task/<id> during the first step: it stores REVOKED, without the request
        tasks.time, "sleep", lambda seconds: backend.mark_as_revoked(tasks.sample_task.request.id, "cancelled")
    )
    task_id = client.post("/task/", json={"seconds": 0.5}).json["task_id"]
    result = app.extensions["celery"].AsyncResult(task_id)
    assert (result.state, type(result.result), str(result.result)) == (
        "REVOKED",
        TaskRevokedError,
        "cancelled while running",
    )
    assert (result.name, result.args, result.kwargs) == (tasks.sample_task.name, [], {"seconds": 0.5})


def test_a_publish_waits_at_most_the_confirm_timeout(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    """The task is published asking RabbitMQ's confirm within 0.5 s (a stalled broker: integration tier, 503)."""
    task = app.extensions["celery"].tasks[tasks.sample_task.name]
    published: list[dict[str, object]] = []
    monkeypatch.setattr(task, "apply_async", lambda args, kwargs, **options: published.append(options))
    task_id = tasks.submit_as("some-id", task, seconds=1)
    assert (task_id, published) == ("some-id", [{"task_id": "some-id", "confirm_timeout": 0.5}])


def test_each_queued_task_is_logged_with_its_name_and_id(
    app: Flask, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Once published, one INFO line names the task and its id: the API's half of the task's story in the logs."""
    caplog.set_level(logging.INFO, logger=tasks.__name__)
    task = app.extensions["celery"].tasks[tasks.sample_task.name]
    monkeypatch.setattr(task, "apply_async", lambda args, kwargs, **options: None)
    tasks.submit_as("some-id", task)
    assert [(record.name, record.levelname, record.getMessage()) for record in caplog.records] == [
        (tasks.__name__, "INFO", f"queued {task.name}[some-id]")
    ]


@freeze_time("2026-01-02 03:04:05")
def test_sample_task_returns_the_current_utc_time(client: FlaskClient) -> None:
    """The result is the (frozen) time the task finished, as ISO-8601 UTC."""
    location = client.post("/task/").headers["Location"]
    assert client.get(location).json["result"] == "2026-01-02T03:04:05+00:00"


def test_submitted_id_exists_before_any_worker_runs_it(write_config: WriteConfig) -> None:
    """submit() records the id, so a queued task is known to the result backend."""
    write_config()
    celery_app = create_app().extensions["celery"]
    task_id = tasks.submit(celery_app.tasks[tasks.sample_task.name])
    assert celery_app.AsyncResult(task_id).exists()
    assert not celery_app.AsyncResult(str(uuid.uuid4())).exists()


def test_a_refused_publish_is_stored_as_revoked(write_config: WriteConfig, monkeypatch: pytest.MonkeyPatch) -> None:
    """When the broker refuses the message, the id is stored REVOKED (a worker drops it) and the error raised."""
    write_config()
    celery_app = create_app({"CELERY": EAGER}).extensions["celery"]
    task = celery_app.tasks[tasks.sample_task.name]
    task_id = uuid.uuid4()
    monkeypatch.setattr(tasks, "uuid", SimpleNamespace(uuid4=lambda: task_id))  # this module's ids only

    def refuse(*args: object, **kwargs: object) -> None:
        raise OperationalError("broker unreachable")

    monkeypatch.setattr(task, "apply_async", refuse)
    with pytest.raises(OperationalError, match=r"^broker unreachable$"):
        tasks.submit(task)
    refused = celery_app.AsyncResult(str(task_id))
    assert (refused.state, repr(refused.result)) == (
        "REVOKED",
        repr(TaskRevokedError("refused: the broker did not accept it")),
    )


@pytest.mark.parametrize(
    ("failures", "state", "result"),
    [(2, "SUCCESS", 3), (4, "SUCCESS", 5), (5, "FAILURE", "dependency away (attempt 5)")],
    ids=["recovers", "recovers-at-the-last-attempt", "fails-after-the-last-attempt"],
)
def test_a_transient_error_is_retried_up_to_the_configured_attempts(
    write_config: WriteConfig, monkeypatch: pytest.MonkeyPatch, failures: int, state: str, result: object
) -> None:
    """Five attempts by default: TransientError is retried until one succeeds or the last fails with its cause."""
    monkeypatch.setattr(tasks.random, "uniform", lambda low, high: 0)  # eager runs ignore countdowns anyway
    write_config()
    app = create_app({"CELERY": {**EAGER, "task_eager_propagates": False}})
    outcome = app.extensions["celery"].tasks[flaky_task.name].delay(failures)
    assert outcome.state == state
    assert (str(outcome.result) if state == "FAILURE" else outcome.result) == result


@pytest.mark.parametrize(
    ("retries", "ceiling"), [(0, 1), (1, 2), (3, 8), (5, 32), (6, 60), (20, 60)], ids=lambda value: str(value)
)
def test_retry_backoff_doubles_up_to_its_maximum_with_full_jitter(
    monkeypatch: pytest.MonkeyPatch, retries: int, ceiling: float
) -> None:
    """The n-th retry waits a random time from 0 to 1 s * 2**n, never more than 60 s (the defaults)."""
    drawn: list[tuple[float, float]] = []
    monkeypatch.setattr(tasks.random, "uniform", lambda low, high: drawn.append((low, high)) or high / 2)
    config = {"RETRY_BACKOFF_SECONDS": 1, "RETRY_BACKOFF_MAX_SECONDS": 60}
    assert tasks.retry_countdown(config, retries) == ceiling / 2
    assert drawn == [(0, ceiling)]
