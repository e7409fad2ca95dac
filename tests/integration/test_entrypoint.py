"""The real worker entrypoint, `celery -A celery_worker.celery worker`, as a subprocess."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.conftest import WriteConfig, cli_worker, create_app_from, wait_for_state

pytestmark = pytest.mark.integration


def test_celery_cli_worker_serves_posted_tasks(write_config: WriteConfig, tmp_path: Path) -> None:
    """A worker started by Celery's CLI from the same config file runs what the API queues, and logs it."""
    # Its own config, so its own queue: the embedded worker cannot take the task instead.
    path = write_config("entrypoint")
    log = tmp_path / "worker.log"
    with cli_worker(path, log, "--loglevel=info"):
        client = create_app_from(path).test_client()
        task_id = client.post("/task/").json["task_id"]
        body = wait_for_state(client, f"/task/{task_id}", "SUCCESS", timeout=60)
    assert body["task_id"] == task_id
    # The task's own log line, through the factory's logging setup, names the task.
    assert f"app.tasks [{task_id}] sleeping for 0 s" in log.read_text()
    assert f"app.tasks.sample_task[{task_id}] succeeded" in log.read_text()
