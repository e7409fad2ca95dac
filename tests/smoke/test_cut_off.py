"""A worker host cut off mid-task, not killed: the task runs elsewhere, and its late result changes nothing.

Two worker containers of the production image on the smoke tier's RabbitMQ + Redis
network. The one running the task is disconnected from the network (it keeps running);
RabbitMQ notices the silence (heartbeats) and hands the message to the other; the first
one comes back later and ends its own run. Marked `ha` (`nox -s ha`).
"""

from __future__ import annotations

import re

import pytest
from flask.testing import FlaskClient
from pytest_celery import CeleryTestWorker

from tests.integration.conftest import wait_for_state
from tests.smoke.stack import COMBINATIONS, Stack
from tests.waiting import wait_until

pytestmark = pytest.mark.ha

# RabbitMQ closes a connection that has been silent for two heartbeat intervals. Celery's
# default is 120 s (60 s once RabbitMQ's own limit applies): this test would wait minutes.
HEARTBEAT = 2
SECONDS = 12  # the task's run: long enough to be cut off in, short enough to wait for twice


def runs_of(task_id: str, worker: CeleryTestWorker) -> int:
    return len(re.findall(rf"\[{task_id}\] sleeping for", worker.logs()))


@pytest.mark.parametrize(
    "combination", [combination for combination in COMBINATIONS if combination.name == "rabbitmq-redis"], ids=str
)
def test_a_worker_cut_off_mid_task_leaves_one_success_that_its_return_never_changes(stack: Stack) -> None:
    """Cut: redelivered, SUCCESS elsewhere; reconnected, the first run returns and the stored SUCCESS stays the same."""
    config = stack.write_config("cut-off", celery={"task_default_queue": "cut-off", "broker_heartbeat": HEARTBEAT})
    volume = stack.config_volume(config)
    workers = [stack.start_worker(volume, name) for name in ("cut-off-a", "cut-off-b")]
    client: FlaskClient = stack.app_from(config).test_client()
    network = stack.client.networks.get(stack.network)

    response = client.post("/task/", json={"seconds": SECONDS})
    task_id = response.json["task_id"]
    wait_until(lambda: any(runs_of(task_id, worker) for worker in workers), "no worker started the task", timeout=60)
    cut, other = workers if runs_of(task_id, workers[0]) else workers[::-1]
    network.disconnect(cut.container.id)
    try:
        redelivered = wait_until(lambda: runs_of(task_id, other) > 0, "the task was not redelivered", timeout=90)
        first = wait_for_state(client, response.headers["Location"], "SUCCESS", timeout=90)
    finally:
        network.connect(cut.container.id)
    # The first run goes on (its checks between steps fail while it is cut off) and returns.
    ended = wait_until(
        lambda: f"sample_task[{task_id}] succeeded" in cut.logs(), "the first run did not end", timeout=90
    )
    late = client.get(response.headers["Location"]).json
    print(
        f"\ncut-off worker: task redelivered after {redelivered:.1f} s, SUCCESS elsewhere, first run ended "
        f"{ended:.1f} s after; stored result unchanged: {late == first}"
    )
    assert late == first
    assert runs_of(task_id, cut) == runs_of(task_id, other) == 1
