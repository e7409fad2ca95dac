"""RabbitMQ blocking publishers (a resource alarm): POST answers 503 at once, /readyz says why, nothing is lost.

On the tests' own RabbitMQ: an alarm blocks every publisher of the node. Marked `ha`, not
`integration`: `nox -s ha` runs the tests of brokers in trouble past a single fault.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.integration import services
from tests.integration.conftest import WriteConfig, at_once, cli_worker, create_app_from, wait_for_state
from tests.integration.test_faults import wait_until

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
    """Memory alarm: POST 503 within 2 s (it hung), /readyz "blocked: ...", a task accepted before SUCCESS; then 202."""
    urls = {"broker_url": own.services.broker_url, "result_backend": own.services.result_backend}
    path = write_config("alarm", celery=urls)
    client = create_app_from(path).test_client()
    with cli_worker(path, tmp_path / "worker.log", pool="prefork"):
        running = client.post("/task/", json={"seconds": 3}).headers["Location"]
        wait_for_state(client, running, "PROGRESS", timeout=60)
        # The pool is left after the alarm: a POST that hangs (as it did) returns once it clears.
        with ThreadPoolExecutor(1) as pool, memory_alarm(own):
            post = pool.submit(at_once, client, "POST /task/", "GET /readyz")
            try:
                (refused, refused_seconds), (ready, _) = post.result(timeout=10)
            except TimeoutError:
                pytest.fail("POST /task/ or GET /readyz hung under the alarm")
            assert (refused.status_code, refused.json["error"]["message"]) == (
                503,
                "The broker is unreachable; try again later.",
            )
            assert refused_seconds < 2
            assert ready.status_code == 503
            assert ready.json["checks"]["broker"].startswith("blocked: RabbitMQ blocked the connection")
        print(f"\nresource alarm: POST answered 503 in {refused_seconds:.3f} s")
        wait_for_state(client, running, "SUCCESS", timeout=60)
        assert client.get("/readyz").status_code == 200
        wait_for_state(client, client.post("/task/", json={"seconds": 0}).headers["Location"], "SUCCESS", timeout=60)
