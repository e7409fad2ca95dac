"""A malformed task message on a real broker: the worker drops it and runs on (app/fixes/malformed_messages.py)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from kombu import Connection

from app.tasks import sample_task
from tests.integration.conftest import WriteConfig, cli_worker, create_app_from, wait_for_state

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    ("content_type", "body"),
    [("application/json", b"{}"), ("application/data", b"not a task"), ("application/data", b"abc")],
    ids=["json-object", "raw-bytes", "three-bytes"],
)
def test_a_malformed_message_is_dropped_and_the_worker_runs_the_next_task(
    write_config: WriteConfig, tmp_path: Path, content_type: str, body: bytes
) -> None:
    """Published straight to the queue: logged as invalid, not requeued; the task sent after it succeeds.

    Without the fix the worker stops on it ("Unrecoverable error"), and with late acks the
    message, never acknowledged, would stop the next worker too.
    """
    log = tmp_path / "worker.log"
    path = write_config("malformed")
    app = create_app_from(path)
    celery_app, client = app.extensions["celery"], app.test_client()
    queue, task_id = celery_app.conf.task_default_queue, str(uuid.uuid4())
    headers = celery_app.amqp.create_task_message(task_id, sample_task.name, (), {}).headers
    with Connection(celery_app.conf.broker_url) as connection:
        connection.Producer().publish(
            body,
            exchange="",
            routing_key=queue,
            declare=[celery_app.amqp.queues[queue]],
            headers=headers,
            content_type=content_type,
            content_encoding="binary",
        )
    with cli_worker(path, log, "--loglevel=info") as worker:
        after = client.post("/task/", json={"seconds": 0}).json["task_id"]
        wait_for_state(client, f"/task/{after}", "SUCCESS", timeout=60)
        assert worker.poll() is None, log.read_text()
    logged = log.read_text()
    assert "Received invalid task message" in logged and "a task message the worker cannot read" in logged, logged
    with Connection(celery_app.conf.broker_url) as connection:
        assert connection.default_channel.queue_declare(queue, passive=True).message_count == 0
