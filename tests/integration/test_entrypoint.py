"""The real worker entrypoint, `celery -A celery_worker.celery worker`, as a subprocess."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from app.observability.logs import Formatter
from app.tasks import sample_task
from tests.integration.conftest import WriteConfig, cli_worker, create_app_from, wait_for_state

pytestmark = pytest.mark.integration


def test_celery_cli_worker_serves_posted_tasks(
    write_config: WriteConfig, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A worker started by Celery's CLI runs what the API queues; the web's and the worker's lines carry the ids."""
    # Its own config, so its own queue: the embedded worker cannot take the task instead.
    path = write_config("entrypoint")
    log = tmp_path / "worker.log"
    caplog.handler.setFormatter(Formatter())  # the factory's, as on the web process's handler
    caplog.set_level(logging.INFO, logger="app.celery_app")
    with cli_worker(path, log, "--loglevel=info"):
        client = create_app_from(path).test_client()
        task_id = client.post("/task/", headers={"X-Request-ID": "abc-123"}).json["task_id"]
        body = wait_for_state(client, f"/task/{task_id}", "SUCCESS", timeout=60)
    assert body["task_id"] == task_id
    # The web process's line for the request, and every line of the worker for the task.
    web_lines = [r for r in caplog.records if r.name.endswith(".celery_app") and task_id in r.getMessage()]
    assert [(r.getMessage(), r.request_id) for r in web_lines] == [(f"queued {sample_task.name}[{task_id}]", "abc-123")]
    worker_lines = [line for line in log.read_text().splitlines() if task_id in line]
    assert f"app.tasks [abc-123] [-] [{task_id}] sleeping for 0 s" in log.read_text()
    assert any(f"{sample_task.name}[{task_id}] succeeded" in line for line in worker_lines)
    assert all("[abc-123]" in line for line in worker_lines), worker_lines
