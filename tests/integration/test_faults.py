"""Faults and hostile input, through real services: nothing accepted is lost, nothing hangs.

Tests that stop, pause or restart a service use containers of their own, never the
shared services of the session (which may be the machine's own RabbitMQ and Redis).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import psutil
import pytest
from celery.worker import WorkController
from flask import Flask
from flask.testing import FlaskClient

from app.tasks import sample_task
from tests import ROOT
from tests.integration import services
from tests.integration.conftest import (
    IN_TIME,
    REDIS_PASSWORD,
    WriteConfig,
    at_once,
    cli_worker,
    create_app_from,
    wait_for_state,
)
from tests.metrics import INTERNAL
from tests.tasks import context_probe, stubborn_task
from tests.waiting import wait_until

if TYPE_CHECKING:  # imported where containers start: a run without Docker never loads testcontainers
    from testcontainers.core.container import DockerContainer

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def own_config(own: services.Containers, write_config: WriteConfig) -> Path:
    """A config file pointing at this module's own services."""
    return write_config(
        "faults", celery={"broker_url": own.services.broker_url, "result_backend": own.services.result_backend}
    )


@pytest.fixture
def own_client(own_config: Path) -> FlaskClient:
    """A test client of an app on this module's own services."""
    return create_app_from(own_config).test_client()


@contextmanager
def paused(container: DockerContainer) -> Iterator[None]:
    """The service accepts connections (Docker's proxy does) but never answers, as in a partition."""
    container.get_wrapped_container().pause()
    try:
        yield
    finally:
        container.get_wrapped_container().unpause()


def test_stalled_broker_answers_503_in_time_then_recovers(own: services.Containers, own_client: FlaskClient) -> None:
    """RabbitMQ stops answering: POST gives up in time (about 2 s) with 503; /readyz names it; then all is well."""
    assert own_client.post("/task/").status_code == 202  # a pooled connection now exists
    with paused(own.rabbitmq):
        (post, post_seconds), (ready, _) = at_once(own_client, "POST /task/", f"GET {INTERNAL}/readyz")
    assert (post.status_code, post.json["error"]["message"]) == (503, "The broker is unreachable; try again later.")
    assert post_seconds < IN_TIME
    assert ready.status_code == 503
    assert ready.json["checks"]["broker"].startswith("unreachable: ")
    assert ready.json["checks"]["result_backend"] == "ok"
    assert own_client.post("/task/").status_code == 202


def test_stalled_backend_answers_503_in_time_and_never_shows_its_password(
    own: services.Containers, own_client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    """Redis stops answering: GET and POST answer 503 in time (about 2 s), /readyz names it, no password leaks."""
    location = own_client.post("/task/").headers["Location"]
    with paused(own.redis):
        (get, get_seconds), (post, post_seconds), (ready, _) = at_once(
            own_client, f"GET {location}", "POST /task/", f"GET {INTERNAL}/readyz"
        )
    for response, seconds in ((get, get_seconds), (post, post_seconds)):
        assert (response.status_code, response.json["error"]["message"]) == (
            503,
            "The result backend is unreachable; try again later.",
        )
        assert seconds < IN_TIME
    assert ready.status_code == 503
    assert ready.json["checks"]["result_backend"].startswith("unreachable: ")
    assert REDIS_PASSWORD not in caplog.text + "".join(r.get_data(as_text=True) for r in (get, post, ready))
    assert own_client.get(location).status_code == 200


def test_broker_restart_loses_no_queued_task(
    own: services.Containers, write_config: WriteConfig, tmp_path: Path
) -> None:
    """RabbitMQ crashes with tasks queued and comes back: none is lost; the worker reconnects by itself."""
    urls = {"broker_url": own.services.broker_url, "result_backend": own.services.result_backend}
    worker_config = write_config("restart", celery=urls)
    # Tasks POSTed through this app wait in a queue no worker consumes until after the restart.
    parked_config = write_config("restart-parked", celery=urls)
    app, parked_app = create_app_from(worker_config), create_app_from(parked_config)
    parked = parked_app.test_client()
    client = app.test_client()
    with cli_worker(worker_config, tmp_path / "worker.log") as worker:
        wait_for_state(client, client.post("/task/").headers["Location"], "SUCCESS")  # the worker is up
        queued = [parked.post("/task/").headers["Location"] for _ in range(3)]
        rabbitmq = own.rabbitmq.get_wrapped_container()
        rabbitmq.kill()  # a crash: only what RabbitMQ confirmed (fsynced) may survive
        rabbitmq.start()
        wait_until(lambda: client.get("/readyz").status_code == 200, "the services did not come back", 60)
        # Not restarted, the worker serves a new task: it reconnected by itself.
        wait_for_state(client, client.post("/task/").headers["Location"], "SUCCESS", timeout=60)
        assert app.extensions["celery"].control.add_consumer(
            parked_app.extensions["celery"].conf.task_default_queue, reply=True, timeout=10, limit=1
        )
        for location in queued:
            wait_for_state(client, location, "SUCCESS", timeout=60)
        assert worker.poll() is None


def test_worker_killed_mid_task_is_redelivered_to_a_new_worker(write_config: WriteConfig, tmp_path: Path) -> None:
    """The whole worker killed during a task: the broker redelivers it (late ack), the next one runs it."""
    assert_a_killed_worker_loses_nothing(write_config("killed", sample_task_seconds=1), tmp_path)


def assert_a_killed_worker_loses_nothing(path: Path, tmp_path: Path) -> None:
    """SIGKILL to a prefork worker (and its pool) running the config's task: a new worker runs it to SUCCESS."""
    client = create_app_from(path).test_client()
    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"
    # Prefork, as in production: an early ack would have been sent when the pool took the task.
    with cli_worker(path, first_log, "--loglevel=info", "--concurrency=1", pool="prefork") as first:
        task_id = client.post("/task/").json["task_id"]
        wait_for_state(client, f"/task/{task_id}", "PROGRESS")  # running
        os.killpg(first.pid, signal.SIGKILL)  # the main process and its pool, as an OOM kill would
        first.wait()
    with cli_worker(path, second_log, "--loglevel=info"):
        wait_for_state(client, f"/task/{task_id}", "SUCCESS", timeout=60)
    assert f"[{task_id}] succeeded" not in first_log.read_text()
    assert f"[{task_id}] succeeded" in second_log.read_text()


def test_pool_process_killed_mid_task_is_run_again(write_config: WriteConfig, tmp_path: Path) -> None:
    """SIGKILL to the prefork process running a task: requeued (reject_on_worker_lost), run again."""
    path = write_config("child-killed", sample_task_seconds=1)
    client = create_app_from(path).test_client()
    with cli_worker(path, tmp_path / "worker.log", "--concurrency=1", pool="prefork") as worker:
        task_id = client.post("/task/").json["task_id"]
        wait_for_state(client, f"/task/{task_id}", "PROGRESS")  # running
        (pool_process,) = psutil.Process(worker.pid).children()
        pool_process.send_signal(signal.SIGKILL)
        body = wait_for_state(client, f"/task/{task_id}", "SUCCESS", timeout=60)
    assert body["task_id"] == task_id


def test_pickle_message_is_rejected_and_never_run(app: Flask, embedded_worker: WorkController) -> None:
    """A pickle message for the sample task, straight onto its queue, is dropped unexecuted."""
    celery_app = app.extensions["celery"]
    pickled = celery_app.tasks[sample_task.name].apply_async(serializer="pickle")
    # The solo worker takes messages in order: once this one is done, the pickle one was handled.
    celery_app.tasks[context_probe.name].delay().get(timeout=20)
    assert pickled.state == "PENDING"  # its record, written before it was sent: never started
    with celery_app.connection_for_read() as connection:
        queue = connection.default_channel.queue_declare(celery_app.conf.task_default_queue, passive=True)
    assert queue.message_count == 0


def test_tasks_past_their_time_limits_fail_clearly(write_config: WriteConfig, tmp_path: Path) -> None:
    """Past the soft limit a task is interrupted; one that ignores it is killed at the hard limit."""
    limits = {"task_soft_time_limit": 1, "task_time_limit": 2}
    # The API accepts no task its limits would stop (sample_task_max_seconds): this one is sent directly.
    path = write_config("limits", sample_task_max_seconds=0.5, celery=limits)
    app = create_app_from(path)
    celery_app, client = app.extensions["celery"], app.test_client()
    # Time limits need a pool that can interrupt or kill the task: prefork, as in production.
    with cli_worker(path, tmp_path / "worker.log", "--concurrency=2", "--include=tests.tasks", pool="prefork"):
        with app.app_context():
            soft = celery_app.tasks[sample_task.name].delay(seconds=30).id
            hard = celery_app.tasks[stubborn_task.name].delay(30).id
        soft_error = wait_for_state(client, f"/task/{soft}", "FAILURE", timeout=30)["error"]
        hard_error = wait_for_state(client, f"/task/{hard}", "FAILURE", timeout=30)["error"]
    assert soft_error == {
        "type": "SoftTimeLimitExceeded",
        "message": "The task was interrupted at its soft time limit.",
    }
    assert hard_error == {"type": "TimeLimitExceeded", "message": "The task was killed at its hard time limit (2 s)."}


def test_a_cancelled_queued_task_never_runs_even_on_a_worker_started_after(
    write_config: WriteConfig, tmp_path: Path
) -> None:
    """Cancelled while no worker runs: the worker started later drops its message (REVOKED is stored)."""
    path = write_config("cancel-queued")
    client = create_app_from(path).test_client()
    task_id = client.post("/task/", json={"seconds": 0}).json["task_id"]
    assert client.delete(f"/task/{task_id}").status_code == 202  # no worker hears the broadcast
    log = tmp_path / "worker.log"
    with cli_worker(path, log, "--loglevel=info", pool="prefork"):
        probe = client.post("/task/", json={"seconds": 0}).json["task_id"]  # queued after it
        wait_for_state(client, f"/task/{probe}", "SUCCESS", timeout=60)
    assert client.get(f"/task/{task_id}").json == {"task_id": task_id, "state": "REVOKED"}
    assert f"[{task_id}] has already finished: message dropped" in log.read_text()
    assert f"[{task_id}] sleeping" not in log.read_text()


@pytest.mark.parametrize("pool", ["prefork", "threads"])
def test_a_cancelled_running_task_stops_at_its_next_step_and_nothing_is_killed(
    write_config: WriteConfig, tmp_path: Path, pool: str
) -> None:
    """Cancelled while running: it stops at its next step and stays REVOKED; no process is killed, no error logged."""
    path = write_config(f"cancel-running-{pool}")
    client = create_app_from(path).test_client()
    log = tmp_path / "worker.log"
    with cli_worker(path, log, "--loglevel=info", "--concurrency=1", pool=pool) as worker:
        task_id = client.post("/task/", json={"seconds": 60}).json["task_id"]
        wait_for_state(client, f"/task/{task_id}", "PROGRESS")
        processes = psutil.Process(worker.pid).children()
        # Queued behind it, cancelled while the worker runs: the worker drops it when it comes.
        waiting = client.post("/task/", json={"seconds": 0}).json["task_id"]
        assert client.delete(f"/task/{waiting}").status_code == 202
        assert client.delete(f"/task/{task_id}").status_code == 202
        after = client.post("/task/", json={"seconds": 0}).json["task_id"]
        # One slot: this runs once the cancelled task has stopped (at its next step, 6 s at most, not 60).
        wait_for_state(client, f"/task/{after}", "SUCCESS", timeout=40)
        assert psutil.Process(worker.pid).children() == processes  # the same pool process, not a new one
    assert client.get(f"/task/{task_id}").json["state"] == "REVOKED"
    assert client.get(f"/task/{waiting}").json["state"] == "REVOKED"
    text = log.read_text()
    assert f"[{task_id}] succeeded" not in text
    assert f"Discarding revoked task: {sample_task.name}[{waiting}]" in text
    assert ("Terminating" in text, "ERROR" in text, "Traceback" in text) == (False, False, False)


def test_a_post_retried_with_its_key_after_a_stalled_brokers_503_runs_once(
    own: services.Containers, own_config: Path, tmp_path: Path
) -> None:
    """RabbitMQ stalls: 503 (if the message arrives, it is REVOKED); the retry with the key: a new task, run once."""
    client = create_app_from(own_config).test_client()
    key = f"order-{uuid.uuid4()}"
    log = tmp_path / "worker.log"
    with cli_worker(own_config, log, "--loglevel=info"):
        wait_for_state(client, client.post("/task/").headers["Location"], "SUCCESS")  # a pooled connection
        with paused(own.rabbitmq):
            assert client.post("/task/", headers={"Idempotency-Key": key}).status_code == 503
        retried = client.post("/task/", headers={"Idempotency-Key": key})
        assert retried.status_code == 202
        task_id = retried.json["task_id"]
        wait_for_state(client, f"/task/{task_id}", "SUCCESS")
        again = client.post("/task/", headers={"Idempotency-Key": key})
        assert (again.status_code, again.json["task_id"]) == (202, task_id)
        # The stalled publish, if RabbitMQ took it, was queued before this task: once this
        # one has run, the worker (solo: one at a time, in order) has handled that one too.
        wait_for_state(client, client.post("/task/").headers["Location"], "SUCCESS")
    assert log.read_text().count(f"[{task_id}] sleeping") == 1


def test_the_workers_health_check_tells_a_frozen_worker_from_a_live_one(
    write_config: WriteConfig, tmp_path: Path
) -> None:
    """The check (a process of its own) passes while the worker's event loop touches its file again and again.

    Frozen, the worker touches it no more and the check fails on its age; thawed, it touches it and the check passes.
    """
    # For the worker and the check only: this process's embedded worker has a file of its own.
    heartbeat = tmp_path / "heartbeat"
    env = {**os.environ, "WORKER_HEARTBEAT_FILE": str(heartbeat)}
    check = [sys.executable, "-I", "app/observability/heartbeat_check.py", "--stale-after", "3"]

    def healthy() -> bool:
        return subprocess.run(check, cwd=ROOT, env=env, capture_output=True).returncode == 0

    def touched_after(moment: int) -> Callable[[], bool]:
        return lambda: heartbeat.exists() and heartbeat.stat().st_mtime_ns > moment

    with cli_worker(write_config("health"), tmp_path / "worker.log", pool="prefork", env=env) as worker:
        wait_until(touched_after(0), "the worker never touched its heartbeat file")
        wait_until(touched_after(heartbeat.stat().st_mtime_ns), "the worker touched its heartbeat file only once")
        assert healthy()
        os.killpg(worker.pid, signal.SIGSTOP)  # frozen: a hung worker, as far as anyone can tell
        try:
            wait_until(lambda: psutil.Process(worker.pid).status() == psutil.STATUS_STOPPED, "the worker did not stop")
            last_touched = heartbeat.stat().st_mtime_ns
            wait_until(lambda: not healthy(), "a frozen worker stayed healthy")
            assert heartbeat.stat().st_mtime_ns == last_touched  # the file's age failed the check
        finally:
            os.killpg(worker.pid, signal.SIGCONT)
        wait_until(touched_after(last_touched), "the thawed worker did not touch its heartbeat file again")
        assert healthy()
