"""A three-node RabbitMQ cluster with quorum queues: nodes stopped one at a time while tasks are POSTed and run.

The web app and two workers get the nodes as a failover list. While 300 POSTs go out,
the node the web app is connected to is stopped and brought back, then the one a worker
is connected to. Marked `ha` (`nox -s ha`); prints the figures the README shows.
"""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from flask.testing import FlaskClient

from tests import ROOT
from tests.integration import services
from tests.integration.cluster import Node, rabbitmq_cluster
from tests.integration.conftest import WriteConfig, cli_worker, create_app_from, wait_for_state
from tests.waiting import wait_until

pytestmark = pytest.mark.ha

POSTS = 300
SUCCEEDED = re.compile(r"app\.tasks\.sample_task\[([0-9a-f-]{36})\] succeeded")
CONNECTED = re.compile(r"Connected to amqp://guest:\*\*@127\.0\.0\.1:(\d+)//")


@pytest.fixture(scope="module")
def cluster() -> Iterator[list[Node]]:
    """Three RabbitMQ nodes clustered, on a Docker network of their own."""
    with rabbitmq_cluster(3) as nodes:
        yield nodes


@dataclass
class Posts:
    """POST /task/ again and again from a thread of its own, each answer kept with its seconds."""

    client: FlaskClient
    answers: list[tuple[int, float, str | None, float]] = field(default_factory=list)  # status, at, id, seconds
    done: threading.Event = field(default_factory=threading.Event)

    def send(self, count: int, interval: float) -> None:
        for _ in range(count):
            started = time.monotonic()
            response = self.client.post("/task/", json={"seconds": 0})
            task_id = response.json.get("task_id") if response.status_code == 202 and response.json else None
            self.answers.append((response.status_code, started, task_id, time.monotonic() - started))
            time.sleep(max(0.0, interval - (time.monotonic() - started)))
        self.done.set()

    def accepted_since(self, moment: float) -> list[str]:
        return [task_id for status, at, task_id, _ in self.answers if status == 202 and at >= moment and task_id]


def connected_port(log: Path) -> int:
    """The port of the node a worker last connected to, from its log."""
    return int(CONNECTED.findall(log.read_text())[-1])


def outage(node: Node, posts: Posts, worker_log: Path | None = None) -> dict[str, float]:
    """Stop `node`, then start it again: seconds until a POST was accepted (and the worker reconnected)."""
    connections = len(CONNECTED.findall(worker_log.read_text())) if worker_log else 0
    stopped = time.monotonic()
    node.stop()
    wait_until(lambda: bool(posts.accepted_since(stopped)), "no POST accepted after the node stopped", timeout=60)
    figures = {"first 202 after": time.monotonic() - stopped}
    if log := worker_log:
        wait_until(lambda: len(CONNECTED.findall(log.read_text())) > connections, "no reconnection", timeout=60)
        figures["worker reconnected after"] = time.monotonic() - stopped
    node.start()
    figures["node back after"] = time.monotonic() - stopped
    return {name: round(seconds, 1) for name, seconds in figures.items()}


def test_nothing_accepted_is_lost_while_cluster_nodes_stop_one_at_a_time(
    cluster: list[Node], own: services.Containers, write_config: WriteConfig, tmp_path: Path
) -> None:
    """Every POST 202 or 503 within 3 s; every 202'd task SUCCESS; duplicates reported, never a changed result."""
    quorum = yaml.safe_load((ROOT / "config" / "rabbitmq-quorum.yaml").read_text())["celery"]
    settings = {key: value for key, value in quorum.items() if key not in ("broker_url", "result_backend")}
    broker_url = ";".join(node.url for node in cluster)
    path = write_config(
        "cluster", celery={**settings, "broker_url": broker_url, "result_backend": own.services.result_backend}
    )
    client = create_app_from(path).test_client()
    logs = [tmp_path / "worker-1.log", tmp_path / "worker-2.log"]
    by_port = {node.port: node for node in cluster}
    with (
        cli_worker(path, logs[0], "--loglevel=info", "--concurrency=2", "--hostname=one@%h", pool="prefork") as first,
        cli_worker(path, logs[1], "--loglevel=info", "--concurrency=2", "--hostname=two@%h", pool="prefork") as second,
    ):
        wait_for_state(client, client.post("/task/").headers["Location"], "SUCCESS", timeout=60)
        posts = Posts(client)
        sender = threading.Thread(target=posts.send, args=(POSTS, 0.12), daemon=True)
        sender.start()
        wait_until(lambda: len(posts.accepted_since(0)) >= 20, "no POSTs accepted before the outages", timeout=60)
        web_node = cluster[0]  # the first of the failover list, which the web app connected to
        web_outage = outage(web_node, posts)
        worker_node = by_port[connected_port(logs[0])]
        worker_outage = outage(worker_node, posts, logs[0])
        assert posts.done.wait(timeout=120), "the POSTs did not end"
        accepted = [task_id for status, _, task_id, _ in posts.answers if status == 202 and task_id]
        for task_id in accepted:
            wait_for_state(client, f"/task/{task_id}", "SUCCESS", timeout=120)
        assert first.poll() is None and second.poll() is None, "a worker process ended"
    statuses = Counter(status for status, *_ in posts.answers)
    slowest = max(seconds for *_, seconds in posts.answers)
    runs = Counter(match for log in logs for match in SUCCEEDED.findall(log.read_text()))
    duplicates = {task_id: count for task_id, count in runs.items() if count > 1 and task_id in accepted}
    print(
        f"\ncluster: {len(posts.answers)} POSTs: {statuses[202]} x 202, {statuses[503]} x 503, "
        f"slowest {slowest:.2f} s; web node {web_node.name} {web_outage}; worker node {worker_node.name} "
        f"{worker_outage}; tasks run twice: {len(duplicates)}"
    )
    assert set(statuses) <= {202, 503}, statuses
    assert slowest < 3
    assert all(runs[task_id] >= 1 for task_id in accepted)
