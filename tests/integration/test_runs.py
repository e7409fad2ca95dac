"""A task runs once, and a worker outlives its result backend (app/runs.py), with real workers."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from celery import Celery
from kombu.exceptions import OperationalError

from app.tasks import sample_task
from tests.integration.conftest import RUN, WriteConfig, cli_worker, create_app_from, wait_for_state
from tests.waiting import wait_until

pytestmark = pytest.mark.integration


def logged(*logs: Path) -> Callable[[str], int]:
    """How many lines of these worker logs hold a text."""
    return lambda text: sum(log.read_text().count(text) for log in logs)


def test_a_duplicate_message_waits_for_the_first_run_on_another_worker(
    write_config: WriteConfig, tmp_path: Path
) -> None:
    """Two workers, one task's message twice: the second is held back while the first runs, then dropped."""
    path = write_config("duplicate")
    app = create_app_from(path)
    client, task = app.test_client(), app.extensions["celery"].tasks[sample_task.name]
    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"
    count = logged(first_log, second_log)
    with (
        cli_worker(path, first_log, "--loglevel=info", "--concurrency=1", f"--hostname=first@{RUN}"),
        cli_worker(path, second_log, "--loglevel=info", "--concurrency=1", f"--hostname=second@{RUN}"),
    ):
        task_id = client.post("/task/", json={"seconds": 4}).json["task_id"]
        wait_for_state(client, f"/task/{task_id}", "PROGRESS")
        # A redelivery, or a client's retry after an ambiguous 503: the idle worker takes it
        # (one task a worker: prefetch is concurrency x 1).
        task.apply_async(kwargs={"seconds": 4}, task_id=task_id)
        wait_until(lambda: count(f"[{task_id}] is running elsewhere") >= 1, "the duplicate was not held back")
        wait_for_state(client, f"/task/{task_id}", "SUCCESS")
        wait_until(lambda: count(f"[{task_id}] has already finished: message dropped") == 1, "never dropped")
    assert count(f"[{task_id}] sleeping") == 1


@pytest.fixture(params=["refused", "stalled"])
def broken_backend(request: pytest.FixtureRequest) -> Iterator[str]:
    """A Redis URL nothing answers on: refusing connections, or taking them and never answering."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        port = listener.getsockname()[1]
        if request.param == "stalled":
            listener.listen(64)  # the kernel takes connections; nobody reads them
            yield f"redis://127.0.0.1:{port}/0"
            return
    yield f"redis://127.0.0.1:{port}/0"


def test_the_worker_outlives_a_result_backend_that_is_away(
    write_config: WriteConfig, tmp_path: Path, broken_backend: str
) -> None:
    """Redis refusing or stalled as a message arrives: the task runs anyway, and the worker keeps serving."""
    transport = {"global_keyprefix": f"{RUN}:", "retry_policy": {"max_retries": 0}}  # fail fast, not in a minute
    path = write_config(
        "backend-away", celery={"result_backend": broken_backend, "result_backend_transport_options": transport}
    )
    app = create_app_from(path)
    celery_app = app.extensions["celery"]
    log = tmp_path / "worker.log"
    count = logged(log)
    name = f"backend-away@{RUN}"
    with cli_worker(path, log, "--loglevel=info", "--concurrency=1", f"--hostname={name}", pool="prefork") as worker:
        wait_until(lambda: answers(celery_app, name), "the worker never answered")
        # Sent by name, as another service would: the factory's id record needs the backend.
        first = celery_app.send_task(sample_task.name, kwargs={"seconds": 0}).id
        wait_until(lambda: count(f"[{first}] sleeping") == 1, "the task never ran")
        second = celery_app.send_task(sample_task.name, kwargs={"seconds": 0}).id
        wait_until(lambda: count(f"[{second}] sleeping") == 1, "the worker did not take the next task")
        assert answers(celery_app, name)
        assert worker.poll() is None
    assert "Unrecoverable error" not in log.read_text()


def answers(celery_app: Celery, name: str) -> bool:
    """Whether worker `name` answers a ping."""
    try:
        return bool(celery_app.control.ping(destination=[name], timeout=1))
    except OperationalError:
        return False
