"""Each supported broker x backend, end to end through the production image's worker.

Every test runs once per combination (the `combination` fixture); the bodies are shared.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
from flask.testing import FlaskClient
from pytest_celery import CeleryTestNode, CeleryTestSetup

from tests.integration.conftest import IN_TIME, at_once, wait_for_state
from tests.integration.services import free_port
from tests.metrics import INTERNAL
from tests.smoke.stack import Stack, with_port

pytestmark = pytest.mark.smoke

SAMPLE_SECONDS = 0.7  # the smoke config's sample_task_seconds (stack.smoke_config)


@contextmanager
def paused(stack: Stack, node: CeleryTestNode) -> Iterator[None]:
    """The node's container frozen (docker pause): connections are still accepted, nothing answers."""
    stack.client.api.pause(node.container.id)
    try:
        yield
    finally:
        stack.client.api.unpause(node.container.id)


def test_task_runs_in_the_worker_container_with_the_files_settings(
    celery_setup: CeleryTestSetup, client: FlaskClient
) -> None:
    """POST /task/ -> SUCCESS with the time it finished; the worker read the mounted file in the app context.

    And the request's X-Request-ID reaches the worker container: every line it logs for the task names it.
    """
    posted = datetime.now(UTC)
    response = client.post("/task/", headers={"X-Request-ID": "abc-123"})
    assert response.status_code == 202
    task_id = response.json["task_id"]
    result = wait_for_state(client, response.headers["Location"], "SUCCESS")["result"]
    assert posted + timedelta(seconds=SAMPLE_SECONDS) <= datetime.fromisoformat(result) <= datetime.now(UTC)
    # Logged by the task from current_app.config: only the app context of an app built
    # from the mounted file knows 0.7 (the image's default would be 5).
    celery_setup.worker.assert_log_exists(f"[abc-123] [-] [{task_id}] sleeping for {SAMPLE_SECONDS} s", timeout=5)
    celery_setup.worker.assert_log_exists(f"[{task_id}] succeeded", timeout=5)
    lines = [line for line in celery_setup.worker.logs().splitlines() if task_id in line]
    assert len(lines) >= 3 and all("[abc-123]" in line for line in lines), lines  # received, sleeping, succeeded


def test_unknown_id_is_404_and_a_queued_task_is_pending(
    celery_setup: CeleryTestSetup, client: FlaskClient, stack: Stack
) -> None:
    """An id never submitted is 404; one queued while the worker is frozen is PENDING, then SUCCESS."""
    unknown = client.get(f"/task/{uuid.uuid4()}")
    assert (unknown.status_code, unknown.json["error"]["code"]) == (404, 404)
    with paused(stack, celery_setup.worker):
        location = client.post("/task/").headers["Location"]
        # Frozen, the worker cannot start it, however late this GET comes: no wait stands for that.
        assert client.get(location).json["state"] == "PENDING"
    wait_for_state(client, location, "SUCCESS")


def test_worker_killed_mid_task_loses_nothing(celery_setup: CeleryTestSetup, stack: Stack) -> None:
    """SIGKILL to the worker's container mid-task: a fresh container of the same image and config runs it."""
    # A task of 2 s, long enough to be killed in the middle of, on a queue of its own:
    # the session's worker must not take it.
    config = stack.write_config("killed", sample_task_seconds=2, celery={"task_default_queue": "killed"})
    volume = stack.config_volume(config)
    client = stack.app_from(config).test_client()
    first = stack.start_worker(volume, "killed-first")
    response = client.post("/task/")
    task_id, location = response.json["task_id"], response.headers["Location"]
    wait_for_state(client, location, "PROGRESS")  # running
    first.kill()  # pytest-celery's: SIGKILL to the container, as an OOM kill or a lost host
    # RabbitMQ requeues the message when the connection drops; Redis, once the
    # visibility_timeout (5 s here) has passed since delivery (the config's comment).
    second = stack.start_worker(volume, "killed-second")
    wait_for_state(client, location, "SUCCESS", timeout=30)
    assert f"[{task_id}] sleeping for 2 s" in first.logs()
    assert f"[{task_id}] succeeded" not in first.logs()
    second.assert_log_exists(f"[{task_id}] succeeded", timeout=5)


def test_stalled_broker_answers_503_in_time_then_recovers(
    celery_setup: CeleryTestSetup, client: FlaskClient, stack: Stack
) -> None:
    """The broker stops answering: POST is 503 within about 2 s, /readyz names it; afterwards tasks run again."""
    assert client.post("/task/").status_code == 202  # the process now holds a connection, as it would
    with paused(stack, celery_setup.broker):
        (post, seconds), (ready, _) = at_once(client, "POST /task/", f"GET {INTERNAL}/readyz")
    assert (post.status_code, post.json["error"]["message"]) == (503, "The broker is unreachable; try again later.")
    assert seconds < IN_TIME
    assert (ready.status_code, ready.json["checks"]["result_backend"]) == (503, "ok")
    assert ready.json["checks"]["broker"].startswith("unreachable: ")
    wait_for_state(client, client.post("/task/").headers["Location"], "SUCCESS", timeout=30)


def test_stalled_backend_answers_503_in_time_then_recovers(
    celery_setup: CeleryTestSetup, client: FlaskClient, stack: Stack
) -> None:
    """The result backend stops answering: GET and POST are 503 within about 2 s, /readyz names it; then all is well."""
    location = client.post("/task/").headers["Location"]
    wait_for_state(client, location, "SUCCESS")
    with paused(stack, celery_setup.backend):
        answers = at_once(client, f"GET {location}", "POST /task/", f"GET {INTERNAL}/readyz")
    (get, get_seconds), (post, post_seconds), (ready, _) = answers
    for response, seconds in ((get, get_seconds), (post, post_seconds)):
        assert (response.status_code, response.json["error"]["message"]) == (
            503,
            "The result backend is unreachable; try again later.",
        )
        assert seconds < IN_TIME
    assert (ready.status_code, ready.json["checks"]["broker"]) == (503, "ok")
    assert ready.json["checks"]["result_backend"].startswith("unreachable: ")
    assert client.get(location).json["state"] == "SUCCESS"
    wait_for_state(client, client.post("/task/").headers["Location"], "SUCCESS", timeout=30)


@pytest.mark.parametrize("dependency", ["broker", "result backend"], ids=["broker", "backend"])
def test_refused_dependency_answers_503_at_once(celery_setup: CeleryTestSetup, stack: Stack, dependency: str) -> None:
    """Nothing listens where the broker (or backend) should be: 503 naming it, within about 2 s."""
    node = celery_setup.broker if dependency == "broker" else celery_setup.backend
    variable = "CELERY_BROKER_URL" if dependency == "broker" else "CELERY_RESULT_BACKEND"
    assert stack.config is not None
    # The combination's file and client library; a port of 127.0.0.1 where nothing listens.
    client = stack.app_from(stack.config, **{variable: with_port(node.config()["host_url"], free_port())}).test_client()
    requests = ["POST /task/"] + ([f"GET /task/{uuid.uuid4()}"] if dependency == "result backend" else [])
    for response, seconds in at_once(client, *requests):
        assert (response.status_code, response.json["error"]["message"]) == (
            503,
            f"The {dependency} is unreachable; try again later.",
        )
        assert seconds < IN_TIME
