"""Prometheus metrics (app/observability/metrics.py): the counts move as requests and tasks do."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from celery.concurrency.prefork import TaskPool as PreforkPool
from celery.signals import task_revoked, worker_init, worker_ready
from flask.testing import FlaskClient
from kombu.exceptions import OperationalError
from prometheus_client import REGISTRY

from app import create_app
from app.observability import metrics
from app.tasks import sample_task
from tests import ROOT
from tests.metrics import moved, scrape
from tests.tasks import failing_task, flaky_task
from tests.unit.conftest import EAGER, WriteConfig


def test_requests_publishes_and_tasks_are_counted(client: FlaskClient) -> None:
    """Two POSTs: two 202s by route, two publish times, two sample tasks run to SUCCESS (eagerly)."""
    before = scrape(client)
    for _ in range(2):
        client.post("/task/")
    client.get("/nowhere")
    after = scrape(client)
    assert moved(before, after, "http_requests_total", method="POST", route="/task/", status="202") == 2
    assert moved(before, after, "http_requests_total", method="GET", route="unmatched", status="404") == 1
    assert moved(before, after, "task_publish_seconds_count") == 2
    assert moved(before, after, "celery_tasks_total", task="app.tasks.sample_task", state="SUCCESS") == 2
    assert moved(before, after, "celery_task_run_seconds_count", task="app.tasks.sample_task") == 2


def test_failures_and_retries_are_counted(write_config: WriteConfig) -> None:
    """A failing task counts as FAILURE; a task retried twice counts two retries, then SUCCESS."""
    write_config()
    app = create_app({"CELERY": {**EAGER, "task_eager_propagates": False}})
    celery_app, client = app.extensions["celery"], app.test_client()
    before = scrape(client)
    celery_app.tasks[flaky_task.name].delay(2)
    celery_app.tasks[failing_task.name].delay("boom")
    after = scrape(client)
    assert moved(before, after, "celery_task_retries_total", task=flaky_task.name) == 2
    assert moved(before, after, "celery_tasks_total", task=flaky_task.name, state="SUCCESS") == 1
    assert moved(before, after, "celery_tasks_total", task=failing_task.name, state="FAILURE") == 1


def test_a_503_is_counted_by_the_dependency_that_was_down(client: FlaskClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """POST while the broker refuses: one more `dependency_unavailable_total{dependency="broker"}`."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise OperationalError("broker unreachable")

    sample = client.application.extensions["celery"].tasks[sample_task.name]
    monkeypatch.setattr(type(sample), "apply_async", refuse)
    before = scrape(client)
    assert client.post("/task/").status_code == 503
    assert moved(before, scrape(client), "dependency_unavailable_total", dependency="broker") == 1


def test_a_task_whose_start_this_process_never_saw_is_counted_but_not_timed(client: FlaskClient) -> None:
    """task_postrun without task_prerun (the start was seen by another process): a final state, no run time."""
    from celery.signals import task_postrun

    before = scrape(client)
    task_postrun.send(sender=sample_task, task_id="never-started-here", task=sample_task, state="SUCCESS")
    after = scrape(client)
    assert moved(before, after, "celery_tasks_total", task=sample_task.name, state="SUCCESS") == 1
    assert moved(before, after, "celery_task_run_seconds_count", task=sample_task.name) == 0


def test_with_a_multiprocess_folder_the_scrape_adds_up_what_the_processes_wrote(
    client: FlaskClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PROMETHEUS_MULTIPROC_DIR set: /metrics sums what the service's processes (two here) counted in that folder."""
    count = "from app.observability.metrics import REQUESTS; REQUESTS.labels('GET', '/elsewhere', '200').inc(3)"
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}  # gunicorn's workers, say
    processes = [subprocess.Popen([sys.executable, "-c", count], cwd=ROOT, env=env) for _ in range(2)]
    assert [process.wait(timeout=60) for process in processes] == [0, 0]
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    assert moved({}, scrape(client), "http_requests_total", method="GET", route="/elsewhere", status="200") == 6


class StartingWorker:
    """What worker_init is sent with: a worker whose pool is an alias or a class, not yet started."""

    def __init__(self, pool_cls: str | type) -> None:
        self.pool_cls = pool_cls


@pytest.mark.parametrize(
    ("pool", "multiprocess_folder", "refused"),
    [
        ("prefork", None, True),
        (PreforkPool, None, True),  # as the CLI's --pool gives it
        ("processes", None, True),  # Celery's other name for prefork
        ("prefork", "/run/prometheus", False),
        ("threads", None, False),
        ("solo", None, False),
    ],
    ids=["prefork", "prefork-class", "processes", "prefork-with-folder", "threads", "solo"],
)
def test_a_prefork_worker_with_a_metrics_port_but_no_multiprocess_folder_exits_2(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    pool: str | type,
    multiprocess_folder: str | None,
    refused: bool,
) -> None:
    """WORKER_METRICS_PORT on prefork needs PROMETHEUS_MULTIPROC_DIR, else one line and status 2 before any pool."""
    monkeypatch.setenv("WORKER_METRICS_PORT", "9808")
    if multiprocess_folder:
        monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", multiprocess_folder)
    else:
        monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    worker = StartingWorker(pool)
    if refused:
        with pytest.raises(SystemExit) as exited:
            worker_init.send(sender=worker)
        assert exited.value.code == 2
        assert capsys.readouterr().err == (
            "error: config error in the environment, key 'WORKER_METRICS_PORT': a prefork worker also needs "
            "PROMETHEUS_MULTIPROC_DIR (a folder its processes share, emptied before it starts): "
            "without it the port serves no task's counts\n"
        )
    else:
        worker_init.send(sender=worker)
        assert capsys.readouterr().err == ""


def test_a_worker_without_a_metrics_port_needs_no_multiprocess_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    """No WORKER_METRICS_PORT: a prefork worker starts without PROMETHEUS_MULTIPROC_DIR (it serves nothing)."""
    monkeypatch.delenv("WORKER_METRICS_PORT", raising=False)
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    worker_init.send(sender=StartingWorker("prefork"))


@pytest.mark.parametrize(
    ("environment", "served"),
    [
        ({}, []),
        ({"WORKER_METRICS_PORT": "9808"}, [(9808, "127.0.0.1", REGISTRY)]),
        ({"WORKER_METRICS_PORT": "9808", "WORKER_METRICS_ADDRESS": "0.0.0.0"}, [(9808, "0.0.0.0", REGISTRY)]),
    ],
    ids=["no-port", "port-on-loopback", "port-on-the-given-address"],
)
def test_a_ready_worker_serves_its_metrics_where_the_environment_says(
    monkeypatch: pytest.MonkeyPatch, environment: dict[str, str], served: list[tuple[int, str, object]]
) -> None:
    """worker_ready: the metrics on WORKER_METRICS_PORT, on loopback unless WORKER_METRICS_ADDRESS; no port, none."""
    for variable in ("WORKER_METRICS_PORT", "WORKER_METRICS_ADDRESS", "PROMETHEUS_MULTIPROC_DIR"):
        monkeypatch.delenv(variable, raising=False)
    for variable, value in environment.items():
        monkeypatch.setenv(variable, value)
    started: list[tuple[int, str, object]] = []
    monkeypatch.setattr(
        metrics, "start_http_server", lambda port, address, registry: started.append((port, address, registry))
    )
    worker_ready.send(sender=None)
    assert started == served


def test_a_task_cancelled_before_it_ran_is_counted_revoked(client: FlaskClient) -> None:
    """task_revoked (a worker dropped its message): one more `celery_tasks_total{state="REVOKED"}`."""
    before = scrape(client)
    task_revoked.send(sender=sample_task, request=None, terminated=False, signum=None, expired=False)
    assert moved(before, scrape(client), "celery_tasks_total", task=sample_task.name, state="REVOKED") == 1


def test_a_run_is_timed_from_its_start_to_its_end(client: FlaskClient) -> None:
    """The run time observed lies between 0 and the time the request that ran it (eagerly) took."""
    before = scrape(client)
    began = time.monotonic()
    client.post("/task/")
    took = time.monotonic() - began
    observed = moved(before, scrape(client), "celery_task_run_seconds_sum", task=sample_task.name)
    assert 0 <= observed <= took
