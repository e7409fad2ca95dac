"""The sample task and submission (app/tasks.py)."""

from __future__ import annotations

import uuid
from types import SimpleNamespace

import pytest
from flask import Flask
from flask.testing import FlaskClient
from freezegun import freeze_time
from kombu.exceptions import OperationalError

from app import create_app, tasks
from tests.unit.conftest import EAGER, WriteConfig


def test_sample_task_sleeps_for_the_configured_seconds(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sleep comes from current_app.config, i.e. from the task's app context."""
    slept: list[float] = []
    monkeypatch.setattr(tasks.time, "sleep", slept.append)
    app.config["SAMPLE_TASK_SECONDS"] = 7
    client.post("/task/")
    assert slept == [7]


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


def test_failed_publish_leaves_no_record(write_config: WriteConfig, monkeypatch: pytest.MonkeyPatch) -> None:
    """When the broker refuses the message, the id is forgotten and the error raised."""
    write_config()
    celery_app = create_app({"CELERY": EAGER}).extensions["celery"]
    task = celery_app.tasks[tasks.sample_task.name]
    task_id = uuid.uuid4()
    monkeypatch.setattr(tasks, "uuid", SimpleNamespace(uuid4=lambda: task_id))  # this module's ids only

    def refuse(*args: object, **kwargs: object) -> None:
        raise OperationalError("broker unreachable")

    monkeypatch.setattr(task, "apply_async", refuse)
    with pytest.raises(OperationalError):
        tasks.submit(task)
    assert not celery_app.AsyncResult(str(task_id)).exists()
