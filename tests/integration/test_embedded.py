"""The embedded pair of config/embedded.yaml (filesystem broker, file results) with the real worker CLI.

No server is involved, so these run wherever the unit tier does, Docker or not.
"""

from __future__ import annotations

import os
import shutil
import uuid
from datetime import datetime
from pathlib import Path

import pytest
import yaml
from flask import Flask

from tests import ROOT
from tests.embedded import write_embedded_config
from tests.integration.conftest import cli_worker, create_app_from, wait_for_state

pytestmark = pytest.mark.integration

# Distinctive, so that the worker's log line shows this file's value reached the task.
SECONDS = 0.3


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """config/embedded.yaml with its folders in `tmp_path`."""
    return write_embedded_config(tmp_path, sample_task_seconds=SECONDS)


@pytest.fixture
def app(config: Path) -> Flask:
    """The web side of the embedded pair."""
    return create_app_from(config)


def test_queued_then_run_by_the_cli_worker_in_its_app_context(app: Flask, config: Path, tmp_path: Path) -> None:
    """Queued with no worker: PENDING; the CLI worker runs it with the file's settings: SUCCESS, a datetime."""
    client = app.test_client()
    location = client.post("/task/", headers={"X-Request-ID": "embedded-1"}).headers["Location"]
    assert client.get(location).json["state"] == "PENDING"  # no worker yet: it waits in the queue folder
    log = tmp_path / "worker.log"
    with cli_worker(config, log, "--loglevel=info", pool="threads"):  # the config's own
        body = wait_for_state(client, location, "SUCCESS", timeout=60)
    assert datetime.fromisoformat(body["result"]).tzinfo is not None
    # current_app.config read inside the task: the file's value, through the app context.
    assert f"app.tasks [embedded-1] [-] [{body['task_id']}] sleeping for {SECONDS} s" in log.read_text()


def test_unknown_id_is_404(app: Flask) -> None:
    """The file backend, like every other, says PENDING for an unknown id; the API says 404."""
    assert app.test_client().get(f"/task/{uuid.uuid4()}").status_code == 404


def test_a_warm_shutdown_mid_task_finishes_it_first(tmp_path: Path) -> None:
    """SIGTERM while a task runs: the worker finishes it, then exits (what `cli.py --worker` relies on)."""
    config = write_embedded_config(tmp_path, sample_task_seconds=2)  # still running when the signal comes
    client = create_app_from(config).test_client()
    location = client.post("/task/").headers["Location"]
    with cli_worker(config, tmp_path / "worker.log", pool="prefork") as worker:
        wait_for_state(client, location, "PROGRESS", timeout=60)  # running
        worker.terminate()
        assert worker.wait(timeout=60) == 0
        assert client.get(location).json["state"] == "SUCCESS"  # before the worker was gone
    assert not os.listdir(tmp_path / "queue")  # and not requeued: it ran once


def test_web_and_worker_started_in_different_folders_share_the_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The shipped file's relative folders are beside it: a web app started elsewhere and a worker agree."""
    (tmp_path / "config").mkdir()
    config = Path(shutil.copy(ROOT / "config" / "embedded.yaml", tmp_path / "config"))  # its ../var: tmp_path/var
    (elsewhere := tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.setenv("FLASK_SECRET_KEY", "embedded-tests")
    client = create_app_from(config).test_client()
    location = client.post("/task/", json={"seconds": 0}).headers["Location"]
    with cli_worker(config, tmp_path / "worker.log", pool="threads"):  # started in the repository's folder
        wait_for_state(client, location, "SUCCESS", timeout=60)
    assert list(elsewhere.iterdir()) == []


def test_a_prefork_worker_with_a_metrics_port_but_no_multiprocess_folder_refuses_to_start(
    config: Path, tmp_path: Path
) -> None:
    """WORKER_METRICS_PORT without PROMETHEUS_MULTIPROC_DIR: the prefork worker says why in one line, exits 2."""
    # Celery takes --pool=prefork for its default, which the file's `worker_pool: threads` replaces.
    data = yaml.safe_load(config.read_text())
    config.write_text(yaml.safe_dump({**data, "celery": {**data["celery"], "worker_pool": "prefork"}}))
    log = tmp_path / "worker.log"
    with cli_worker(config, log, pool="prefork", env={"WORKER_METRICS_PORT": "9"}) as worker:
        assert worker.wait(timeout=60) == 2
    # Celery may warn before (a worker run as root): the error is the last line, and no traceback.
    output = log.read_text()
    assert output.splitlines()[-1] == (
        "error: config error in the environment, key 'WORKER_METRICS_PORT': a prefork worker also needs "
        "PROMETHEUS_MULTIPROC_DIR (a folder its processes share, emptied before it starts): "
        "without it the port serves no task's counts"
    )
    assert "Traceback" not in output
