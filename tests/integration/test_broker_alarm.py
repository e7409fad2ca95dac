"""RabbitMQ blocking publishers (a resource alarm): POST answers 503 at once, /readyz says why, nothing is lost.

And a refused POST's task never runs, though RabbitMQ queues its message once the alarm
clears. On the tests' own RabbitMQ: an alarm blocks every publisher of the node. Marked
`ha`, not `integration`: `nox -s ha` runs the tests of brokers in trouble past a single fault.
"""

from __future__ import annotations

import re
import subprocess
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.integration import services
from tests.integration.conftest import WriteConfig, at_once, cli_worker, create_app_from, wait_for_state
from tests.metrics import INTERNAL
from tests.waiting import wait_until

pytestmark = pytest.mark.ha


def rabbitmq(own: services.Containers, *command: str) -> subprocess.CompletedProcess[str]:
    """A RabbitMQ CLI command inside the tests' own RabbitMQ container."""
    container = own.rabbitmq.get_wrapped_container().id
    return subprocess.run(["docker", "exec", container, *command], capture_output=True, text=True, timeout=60)


def alarm_on(own: services.Containers) -> bool:
    return rabbitmq(own, "rabbitmq-diagnostics", "-q", "check_alarms").returncode != 0


@contextmanager
def memory_alarm(own: services.Containers) -> Iterator[None]:
    """RabbitMQ's memory high watermark at 1 byte: its memory alarm is on inside, off again after."""
    rabbitmq(own, "rabbitmqctl", "set_vm_memory_high_watermark", "absolute", "1").check_returncode()
    try:
        wait_until(lambda: alarm_on(own), "RabbitMQ raised no memory alarm")
        yield
    finally:
        rabbitmq(own, "rabbitmqctl", "set_vm_memory_high_watermark", "0.6").check_returncode()  # RabbitMQ 4's default
        wait_until(lambda: not alarm_on(own), "RabbitMQ kept its memory alarm")


def test_a_blocked_broker_answers_503_at_once_and_loses_no_accepted_task(
    write_config: WriteConfig, own: services.Containers, tmp_path: Path
) -> None:
    """Memory alarm: POST 503 while it is on (it hung till it cleared), /readyz "blocked: ...", accepted tasks run."""
    urls = {"broker_url": own.services.broker_url, "result_backend": own.services.result_backend}
    path = write_config("alarm", celery=urls)
    client = create_app_from(path).test_client()
    with cli_worker(path, tmp_path / "worker.log", pool="prefork"):
        running = client.post("/task/", json={"seconds": 3}).headers["Location"]
        wait_for_state(client, running, "PROGRESS", timeout=60)
        # The pool is left after the alarm: a POST that hangs (as it did) returns once it clears.
        with ThreadPoolExecutor(1) as pool, memory_alarm(own):
            post = pool.submit(at_once, client, "POST /task/", f"GET {INTERNAL}/readyz")
            # A request that waits for the broker waits until the alarm clears, which happens
            # only once this block is left: the timeout turns that hang into a failure, and
            # its length is not a claim (the answers take milliseconds, printed below).
            try:
                (refused, refused_seconds), (ready, _) = post.result(timeout=30)
            except TimeoutError:
                pytest.fail("POST /task/ or GET /readyz hung under the alarm")
            assert (refused.status_code, refused.json["error"]["message"]) == (
                503,
                "The broker is unreachable; try again later.",
            )
            assert ready.status_code == 503
            assert ready.json["checks"]["broker"].startswith("blocked: RabbitMQ blocked the connection")
        print(f"\nresource alarm: POST answered 503 in {refused_seconds:.3f} s")
        wait_for_state(client, running, "SUCCESS", timeout=60)
        assert client.get("/readyz").status_code == 200
        wait_for_state(client, client.post("/task/", json={"seconds": 0}).headers["Location"], "SUCCESS", timeout=60)


RECEIVED = re.compile(r"Task app\.tasks\.sample_task\[([0-9a-f-]{36})\] received")


def test_a_post_refused_under_the_alarm_never_runs(
    write_config: WriteConfig, own: services.Containers, tmp_path: Path
) -> None:
    """RabbitMQ queues a refused POST's message once the alarm clears: the worker drops it; a keyed retry runs.

    With and without an Idempotency-Key; the retry with the key, after the alarm, is a task
    of its own. One pool process takes the messages in their order, so once the retry has
    finished the refused messages, queued before it, have been dealt with.
    """
    urls = {"broker_url": own.services.broker_url, "result_backend": own.services.result_backend}
    path = write_config("refused", celery=urls)
    client = create_app_from(path).test_client()
    log = tmp_path / "worker.log"
    key = {"Idempotency-Key": f"order-{uuid.uuid4()}"}

    def received() -> list[str]:
        return RECEIVED.findall(log.read_text())

    with cli_worker(path, log, "--loglevel=info", "--concurrency=1", pool="prefork"):
        accepted = [client.post("/task/", json={"seconds": 0}).json["task_id"]]  # a connection that has published
        wait_for_state(client, f"/task/{accepted[0]}", "SUCCESS", timeout=60)
        with memory_alarm(own):
            refusals = [client.post("/task/", json={"seconds": 0}, headers=headers) for headers in ({}, key)]
            assert [refusal.status_code for refusal in refusals] == [503, 503]
        wait_until(lambda: len(received()) >= 3, "RabbitMQ did not deliver the refused POSTs' messages")
        retried = client.post("/task/", json={"seconds": 0}, headers=key)
        assert retried.status_code == 202
        accepted.append(retried.json["task_id"])
        wait_for_state(client, f"/task/{accepted[1]}", "SUCCESS", timeout=60)
    refused = [task_id for task_id in received() if task_id not in accepted]
    assert (len(refused), len(set(refused))) == (2, 2)
    assert [client.get(f"/task/{task_id}").json["state"] for task_id in refused] == ["REVOKED"] * 2
    assert [f"[{task_id}] sleeping" in log.read_text() for task_id in refused + accepted] == [False] * 2 + [True] * 2
