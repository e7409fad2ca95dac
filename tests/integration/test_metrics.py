"""Prometheus metrics of the web app and of a prefork worker (multiprocess mode), scraped as a task runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration import services
from tests.integration.conftest import WriteConfig, cli_worker, create_app_from, wait_for_state
from tests.metrics import moved, scrape, scrape_worker

pytestmark = pytest.mark.integration


def test_web_and_worker_counts_move_as_a_task_runs(write_config: WriteConfig, tmp_path: Path) -> None:
    """POST: the web counts the request and the publish; the worker's pool process counts the run and SUCCESS."""
    port = services.free_port()
    (tmp_path / "prometheus").mkdir()
    # The worker's processes share the folder (multiprocess mode); this process counts for itself.
    env = {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prometheus"), "WORKER_METRICS_PORT": str(port)}
    path = write_config("metrics")
    client = create_app_from(path).test_client()
    with cli_worker(path, tmp_path / "worker.log", "--concurrency=2", pool="prefork", env=env):
        wait_for_state(client, client.post("/task/").headers["Location"], "SUCCESS", timeout=60)  # all up
        web_before, worker_before = scrape(client), scrape_worker(port)
        wait_for_state(client, client.post("/task/").headers["Location"], "SUCCESS")
        web_after, worker_after = scrape(client), scrape_worker(port)
    assert moved(web_before, web_after, "http_requests_total", method="POST", route="/task/", status="202") == 1
    assert moved(web_before, web_after, "task_publish_seconds_count") == 1
    task = "app.tasks.sample_task"
    assert moved(worker_before, worker_after, "celery_tasks_total", task=task, state="SUCCESS") == 1
    assert moved(worker_before, worker_after, "celery_task_run_seconds_count", task=task) == 1
