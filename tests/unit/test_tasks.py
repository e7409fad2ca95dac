"""The sample task (app/tasks.py), and checkpoint(): progress and cancel (app/tasking/__init__.py)."""

from __future__ import annotations

import pytest
from celery.exceptions import TaskRevokedError
from flask import Flask
from flask.testing import FlaskClient
from freezegun import freeze_time

from app import tasking, tasks


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
    assert slept == [seconds / 10] * 10
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
    assert len(slept) == 10
    warnings = [record.getMessage() for record in caplog.records if record.name == "app.tasking"]
    expected = 10 + (failing == "get_state")  # the check after the last step reads too
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


def test_a_task_only_its_worker_was_told_to_cancel_stores_why_and_what_it_was(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Revoked in its worker alone (`celery control revoke`): it stops, stored as cancelled while running, as it was."""
    revoked: set[str] = set()  # the worker's revoked ids
    monkeypatch.setattr(tasking, "revoked_tasks", revoked)
    monkeypatch.setattr(tasks.time, "sleep", lambda seconds: revoked.add(tasks.sample_task.request.id))
    task_id = client.post("/task/", json={"seconds": 0.5}).json["task_id"]
    result = app.extensions["celery"].AsyncResult(task_id)
    assert (result.state, type(result.result), str(result.result)) == (
        "REVOKED",
        TaskRevokedError,
        "cancelled while running",
    )
    assert (result.name, result.args, result.kwargs) == (tasks.sample_task.name, [], {"seconds": 0.5})


@freeze_time("2026-01-02 03:04:05")
def test_sample_task_returns_the_current_utc_time(client: FlaskClient) -> None:
    """The result is the (frozen) time the task finished, as ISO-8601 UTC."""
    location = client.post("/task/").headers["Location"]
    assert client.get(location).json["result"] == "2026-01-02T03:04:05+00:00"
