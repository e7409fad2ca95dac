"""The HTTP API with a worker behind it, through a real broker and result backend."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.tasks import submit
from tests.integration.conftest import wait_for_state
from tests.tasks import failing_task

pytestmark = pytest.mark.integration


def test_post_is_pending_then_succeeds_with_a_datetime(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """POST answers 202; GET shows the task unfinished, then SUCCESS with its datetime."""
    monkeypatch.setitem(app.config, "SAMPLE_TASK_SECONDS", 0.5)
    posted = client.post("/task/")
    assert posted.status_code == 202
    location = posted.headers["Location"]
    assert client.get(location).json["state"] in {"PENDING", "STARTED"}
    body = wait_for_state(client, location, "SUCCESS")
    finished = datetime.fromisoformat(body["result"])
    assert finished.tzinfo is not None
    assert abs(datetime.now(UTC) - finished) < timedelta(seconds=30)


def test_failed_task_answers_failure_json(app: Flask, client: FlaskClient) -> None:
    """A task that raises reads as FAILURE with the exception's type and message."""
    with app.app_context():
        task_id = submit(app.extensions["celery"].tasks[failing_task.name], "disk full")
    body = wait_for_state(client, f"/task/{task_id}", "FAILURE")
    assert body["error"] == {"type": "ValueError", "message": "disk full"}


def test_unknown_id_is_404_with_a_real_backend(client: FlaskClient) -> None:
    """An id never submitted is 404, though the Redis backend says PENDING for it."""
    response = client.get(f"/task/{uuid.uuid4()}")
    assert response.status_code == 404
    assert response.json["error"]["code"] == 404
