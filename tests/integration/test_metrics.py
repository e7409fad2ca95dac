"""Prometheus metrics of the web app and of a prefork worker (multiprocess mode), scraped as a task runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration import services
from tests.integration.conftest import WriteConfig, cli_worker, create_app_from, wait_for_state
from tests.metrics import moved, scrape, scrape_worker_until

pytestmark = pytest.mark.integration


def test_web_and_worker_counts_move_as_a_task_runs(write_config: WriteConfig, tmp_path: Path) -> None:
    """POST: the web counts the request and the publish; the worker's pool process counts the run and SUCCESS."""
    port = services.free_port()
    (tmp_path / "prometheus").mkdir()
    # The worker's processes share the folder (multiprocess mode); this process counts for itself.
    env = {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prometheus"), "WORKER_METRICS_PORT": str(port)}
    path = write_config("metrics")
    client = create_app_from(path).test_client()
    task = "app.tasks.sample_task"
    success = {"task": task, "state": "SUCCESS"}
    with cli_worker(path, tmp_path / "worker.log", "--concurrency=2", pool="prefork", env=env):
        wait_for_state(client, client.post("/task/").headers["Location"], "SUCCESS", timeout=60)  # all up
        # A pool process counts a task after it stored the result: wait for the count itself.
        worker_before = scrape_worker_until(port, {}, "celery_tasks_total", 1, **success)
        assert moved({}, worker_before, "celery_tasks_total", **success) == 1
        web_before = scrape(client)
        wait_for_state(client, client.post("/task/").headers["Location"], "SUCCESS")
        worker_after = scrape_worker_until(port, worker_before, "celery_tasks_total", 1, **success)
        web_after = scrape(client)
    assert moved(web_before, web_after, "http_requests_total", method="POST", route="/task/", status="202") == 1
    assert moved(web_before, web_after, "task_publish_seconds_count") == 1
    assert moved(worker_before, worker_after, "celery_tasks_total", **success) == 1
    assert moved(worker_before, worker_after, "celery_task_run_seconds_count", task=task) == 1
