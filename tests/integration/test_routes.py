"""The HTTP API with a worker behind it, through a real broker and result backend."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from celery import Task
from celery.signals import task_prerun
from celery.worker import WorkController
from flask import Blueprint, Flask
from flask.testing import FlaskClient

from app.web.task_api import expose
from tests.integration.conftest import at_once, create_app_from, wait_for_state
from tests.tasks import TYPED_BODY, TYPED_RESULT, failing_task, flaky_task, typed_task

pytestmark = pytest.mark.integration
# What a client reads of a failure not meant for it (app/routes.py).
GENERIC = "The task failed; the service's logs say why, under its task id."


def test_post_is_pending_then_succeeds_with_a_datetime(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """POST answers 202; GET shows the task unfinished, then SUCCESS with its datetime."""
    monkeypatch.setitem(app.config, "SAMPLE_TASK_SECONDS", 0.5)
    posted = client.post("/task/")
    assert posted.status_code == 202
    location = posted.headers["Location"]
    assert client.get(location).json["state"] in {"PENDING", "STARTED", "PROGRESS"}
    body = wait_for_state(client, location, "SUCCESS")
    finished = datetime.fromisoformat(body["result"])
    assert finished.tzinfo is not None
    assert abs(datetime.now(UTC) - finished) < timedelta(seconds=30)


def test_a_tasks_typed_parameters_and_results_cross_the_broker_and_the_backend(
    app: Flask, embedded_worker: WorkController
) -> None:
    """A task of the user's: a date, a UUID, a decimal reach it as such; its date and bytes come back ISO and base64."""
    exposing = create_app_from(Path(app.config["CONFIG_FILE"]))  # the same queue: the session's worker runs it
    bp = Blueprint("typed", __name__)
    expose(bp, "/typed/", typed_task)
    exposing.register_blueprint(bp)
    typed = exposing.test_client()
    location = typed.post("/typed/", json=TYPED_BODY).headers["Location"]
    assert wait_for_state(typed, location, "SUCCESS")["result"] == TYPED_RESULT


def test_failed_task_answers_failure_json(app: Flask, client: FlaskClient, caplog: pytest.LogCaptureFixture) -> None:
    """A task that raises: FAILURE with the exception's type; its text in the worker's log, not in the answer."""
    with app.app_context():
        task_id = app.extensions["celery"].tasks[failing_task.name].delay("disk full").id
    body = wait_for_state(client, f"/task/{task_id}", "FAILURE")
    assert body["error"] == {"type": "ValueError", "message": GENERIC}
    assert f"{failing_task.name}[{task_id}] raised unexpected: ValueError('disk full')" in caplog.text


def test_an_error_meant_for_the_client_answers_its_text(app: Flask, client: FlaskClient) -> None:
    """A task that raises ClientError: its message reaches the client as it was written."""
    with app.app_context():
        task_id = app.extensions["celery"].tasks[failing_task.name].delay("no such invoice", True).id
    body = wait_for_state(client, f"/task/{task_id}", "FAILURE")
    assert body["error"] == {"type": "ClientError", "message": "no such invoice"}


def test_unknown_id_is_404_with_a_real_backend(client: FlaskClient) -> None:
    """An id never submitted is 404, though the Redis backend says PENDING for it."""
    response = client.get(f"/task/{uuid.uuid4()}")
    assert response.status_code == 404
    assert response.json["error"]["code"] == 404


def test_progress_is_seen_between_0_and_1_while_the_task_runs(client: FlaskClient) -> None:
    """GET on a running task: PROGRESS and a fraction, rising, then SUCCESS."""
    location = client.post("/task/", json={"seconds": 1}).headers["Location"]
    seen = [wait_for_state(client, location, "PROGRESS")["progress"]]
    while (body := client.get(location).json)["state"] == "PROGRESS":
        seen.append(body["progress"])
        time.sleep(0.05)
    assert body["state"] == "SUCCESS"
    assert seen == sorted(seen) and seen[0] >= 0 and 0 < seen[-1] < 1


def test_a_cancelled_task_on_the_solo_pool_stops_between_its_steps(client: FlaskClient) -> None:
    """The embedded worker (solo: it reads no control message while a task runs) stops at the next step."""
    location = client.post("/task/", json={"seconds": 60}).headers["Location"]
    wait_for_state(client, location, "PROGRESS")
    assert client.delete(location).status_code == 202
    # The solo worker runs one task at a time: this one runs once the cancelled one has
    # stopped, at its next step (6 s at most), not after the 60 s it asked for.
    after = client.post("/task/", json={"seconds": 0}).headers["Location"]
    wait_for_state(client, after, "SUCCESS", timeout=40)
    assert client.get(location).json == {"task_id": location.rsplit("/", 1)[1], "state": "REVOKED"}


def test_a_transient_failure_is_retried_showing_the_attempt_then_succeeds(app: Flask, client: FlaskClient) -> None:
    """RETRY with the failed attempt between attempts (backoff from the config), then SUCCESS."""
    retried_id, retry_read = str(uuid.uuid4()), threading.Event()

    def hold_second_attempt(task_id: str, task: Task, **_: Any) -> None:
        # The second attempt's start would replace RETRY (its backoff may be 0 s with jitter):
        # it waits, in the embedded worker, until the test has read RETRY.
        if task_id == retried_id and task.request.retries == 1:
            retry_read.wait(timeout=60)

    task_prerun.connect(hold_second_attempt, weak=False)
    try:
        with app.app_context():
            app.extensions["celery"].tasks[flaky_task.name].apply_async((2,), task_id=retried_id)
        retrying = wait_for_state(client, f"/task/{retried_id}", "RETRY")
    finally:
        retry_read.set()
        task_prerun.disconnect(hold_second_attempt)
    assert retrying["attempt"] == 1
    assert retrying["error"]["type"] == "TransientError"
    assert wait_for_state(client, f"/task/{retried_id}", "SUCCESS")["result"] == 3


def test_a_transient_failure_past_the_last_attempt_fails_with_its_cause(app: Flask, client: FlaskClient) -> None:
    """After the configured attempts (3 in this tier's config), FAILURE with the last error's type (its text: logs)."""
    with app.app_context():
        task_id = app.extensions["celery"].tasks[flaky_task.name].delay(10).id
    body = wait_for_state(client, f"/task/{task_id}", "FAILURE")
    assert body["error"] == {"type": "TransientError", "message": GENERIC}


def test_concurrent_posts_with_one_key_start_one_task(client: FlaskClient) -> None:
    """Eight POSTs at once with one key: one task; each answer is its id (202) or 'being accepted' (409)."""
    key = f"order-{uuid.uuid4()}"
    responses = at_once(client, *["POST /task/"] * 8, headers={"Idempotency-Key": key})
    accepted = {response.json["task_id"] for response, _ in responses if response.status_code == 202}
    assert {response.status_code for response, _ in responses} <= {202, 409}
    assert len(accepted) == 1
    (task_id,) = accepted
    assert wait_for_state(client, f"/task/{task_id}", "SUCCESS")["task_id"] == task_id
    assert client.post("/task/", headers={"Idempotency-Key": key}).json["task_id"] == task_id
