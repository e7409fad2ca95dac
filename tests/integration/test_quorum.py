"""config/rabbitmq-quorum.yaml on one RabbitMQ: quorum queues carry the sample task, countdowns, a killed worker.

On the tests' own RabbitMQ (the fault tests'): native delayed delivery declares exchanges
and queues of fixed names, which a shared broker's other users may rely on.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml
from amqp.exceptions import PreconditionFailed

from tests import ROOT
from tests.integration import services
from tests.integration.conftest import WriteConfig, cli_worker, create_app_from, wait_for_state
from tests.integration.test_faults import assert_a_killed_worker_loses_nothing
from tests.tasks import context_probe

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def quorum_settings() -> dict[str, str]:
    """The Celery settings of the shipped quorum config, but its URLs."""
    celery: dict[str, str] = yaml.safe_load((ROOT / "config" / "rabbitmq-quorum.yaml").read_text())["celery"]
    return {key: value for key, value in celery.items() if key not in ("broker_url", "result_backend")}


def quorum_config(write_config: WriteConfig, own: services.Containers, settings: dict[str, str], name: str) -> Path:
    urls = {"broker_url": own.services.broker_url, "result_backend": own.services.result_backend}
    return write_config(name, sample_task_seconds=1, celery={**urls, **settings})


def test_the_sample_task_runs_on_a_quorum_queue(
    write_config: WriteConfig, own: services.Containers, quorum_settings: dict[str, str], tmp_path: Path
) -> None:
    """POST -> SUCCESS, and the queue it went through is a quorum queue (a classic declaration is refused)."""
    path = quorum_config(write_config, own, quorum_settings, "quorum")
    app = create_app_from(path)
    client, celery_app = app.test_client(), app.extensions["celery"]
    with cli_worker(path, tmp_path / "worker.log", pool="prefork"):
        wait_for_state(client, client.post("/task/").headers["Location"], "SUCCESS", timeout=60)
    with celery_app.connection_for_write() as connection, pytest.raises(PreconditionFailed, match="x-queue-type"):
        connection.default_channel.queue_declare(celery_app.conf.task_default_queue, durable=True, auto_delete=False)


def test_a_countdown_task_runs_after_its_countdown(
    write_config: WriteConfig, own: services.Containers, quorum_settings: dict[str, str], tmp_path: Path
) -> None:
    """Countdown on quorum queues: RabbitMQ's native delayed delivery holds it, then the worker runs it."""
    path = quorum_config(write_config, own, quorum_settings, "quorum-countdown")
    app = create_app_from(path)
    client = app.test_client()
    with cli_worker(path, tmp_path / "worker.log", "--include=tests.tasks", pool="prefork"):
        # Once a worker has run a task, it has declared the delayed-delivery exchanges a
        # countdown is published to (before that, RabbitMQ refuses the publish: 404).
        wait_for_state(client, client.post("/task/").headers["Location"], "SUCCESS", timeout=60)
        sent = time.monotonic()
        result = app.extensions["celery"].tasks[context_probe.name].apply_async(countdown=2)
        assert result.get(timeout=60)["task_id"] == result.id
        assert time.monotonic() - sent >= 2


def test_a_killed_worker_loses_nothing_on_a_quorum_queue(
    write_config: WriteConfig, own: services.Containers, quorum_settings: dict[str, str], tmp_path: Path
) -> None:
    """SIGKILL mid-task: RabbitMQ puts the quorum queue's message back; a new worker runs it."""
    assert_a_killed_worker_loses_nothing(quorum_config(write_config, own, quorum_settings, "quorum-killed"), tmp_path)
