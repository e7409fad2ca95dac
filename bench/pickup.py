"""Pick-up delay and drain rate of one worker process per pool, with RabbitMQ and with Redis as broker.

    python -m bench.pickup [--kombu unpatched] [--starts 3] [--pools solo,threads] [--brokers rabbitmq]
    python -m bench.pickup --embedded [--heartbeat 0.5] [--kombu unpatched]

Each worker is `celery -A celery_worker.celery worker --pool=P` (production's entrypoint,
so app/fixes/kombu_poll.py's fix applies) plus `--include=bench.pickup,bench.tasks` for
the tasks. Pick-up: tasks published one at a time, each once the previous one's result is
stored (an idle worker that has just finished a task); the delay runs from just before the
publish call to the task's first line. Drain: no-ops published at once, then one task
whose stored result marks the end (bench.workers.drain). `--kombu unpatched` takes the
fix out (kombu 5.7.0 as released), to compare. `--embedded` measures the same delay with
celery.contrib.testing.worker.start_worker (pool solo), the embedded worker of the tests.
Services as for `python -m bench`; "redis" as broker is the result backend's Redis.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import celery.contrib.testing.tasks  # noqa: F401  (start_worker pings with celery.ping)
from celery import Celery, shared_task
from celery.contrib.testing.worker import start_worker
from celery.signals import worker_init
from kombu.asynchronous.hub import Hub

from app import create_app
from app.fixes import kombu_poll
from bench import report, workers
from bench.services import bench_services
from tests.integration.services import Services

STAMP = "bench.pickup.stamp"
UNPATCHED = "PICKUP_KOMBU_UNPATCHED"  # set in a worker's environment: no app/fixes/kombu_poll.py fix
# One process each, to compare like with like; "prefork-default" is Celery's default size.
POOLS = {"solo": "1", "threads": "1", "prefork": "1", "prefork-default": ""}
QUEUE = "bench-pickup"


@shared_task(name=STAMP)  # type: ignore[untyped-decorator]
def stamp() -> float:
    """When the worker started running it."""
    return time.time()


def unpatch() -> None:
    """kombu 5.7.0 as released: app/fixes/kombu_poll.py neither patches at worker_init nor has patched."""
    worker_init.disconnect(kombu_poll.install)
    Hub._create_poller = kombu_poll.KOMBU_CREATE_POLLER  # type: ignore[method-assign]


if os.environ.get(UNPATCHED) == "1":  # imported by a worker (--include) before worker_init
    unpatch()


def brokers(urls: Services) -> dict[str, Services]:
    """The bench's services, and the same with the result backend's Redis as the broker too."""
    return {"rabbitmq": urls, "redis": Services(urls.result_backend, urls.result_backend, urls.source)}


@contextmanager
def worker(pool: str, config: Path, client: Celery, unpatched: bool = False) -> Iterator[None]:
    """One `celery -A celery_worker.celery worker` process consuming QUEUE, ready, until the block ends."""
    options = ["--without-gossip", "--include=bench.pickup,bench.tasks"]  # its stamp, the drain's no-op
    options += [f"--concurrency={POOLS[pool]}"] if POOLS[pool] else []
    env = {**os.environ, "FLASK_CONFIG": str(config), UNPATCHED: "1" if unpatched else "0"}
    with workers.answering(workers.command("celery_worker.celery", pool.split("-")[0], QUEUE, *options), env, client):
        yield


def wait(result: Any, timeout: float = 30) -> float:
    """The value of `result` (a stamp), polled for often: the next pick-up waits for it."""
    workers.until_ready([result], time.perf_counter() + timeout, poll=0.001)
    return float(result.result)


def pickups(client: Celery, tasks: int) -> list[float]:
    """Milliseconds from publishing each task to its start, each published once the previous one is done."""
    delays = []
    for _ in range(tasks):
        published = time.time()
        delays.append((wait(client.send_task(STAMP, queue=QUEUE)) - published) * 1000)
    return delays


def measure(urls: Services, folder: Path, pool: str, tasks: int, drain: int, unpatched: bool = False) -> dict[str, Any]:
    """A fresh worker of `pool` on `urls`: its pick-up delays (ms) and drain rate (tasks/s)."""
    client = report.client(urls)
    client.conf.task_default_queue = QUEUE
    with worker(pool, report.write_config(folder, urls), client, unpatched):
        return {"delays": pickups(client, tasks), "rate": workers.drain(client, QUEUE, drain)}


def percentile(delays: list[float], n: int) -> float:
    return statistics.quantiles(delays, n=100, method="inclusive")[n - 1]


def embedded(urls: Services, tasks: int, heartbeat: float | None) -> None:
    """Pick-up delays through an in-process solo worker (start_worker), as the tests embed one."""
    with tempfile.TemporaryDirectory() as folder:
        os.environ["FLASK_CONFIG"] = str(report.write_config(Path(folder), urls))
        app = create_app({"CELERY": {"task_default_queue": QUEUE}}).extensions["celery"]
    options: dict[str, Any] = {"without_heartbeat": False, "heartbeat_interval": heartbeat} if heartbeat else {}
    with start_worker(app, pool="solo", perform_ping_check=True, shutdown_timeout=30, **options):
        delays = pickups(app, tasks)
    print(f"embedded solo, heartbeat {heartbeat}: p50 {statistics.median(delays):.1f} ms, max {max(delays):.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kombu", choices=["patched", "unpatched"], default="patched")
    parser.add_argument("--pools", default=",".join(POOLS), help=f"comma-separated, of {', '.join(POOLS)}")
    parser.add_argument("--brokers", default="rabbitmq,redis")
    parser.add_argument("--starts", type=int, default=1, help="worker processes per pool and broker")
    parser.add_argument("--tasks", type=int, default=100, help="pick-ups measured per process")
    parser.add_argument("--drain", type=int, default=500, help="no-ops drained per process")
    parser.add_argument("--embedded", action="store_true")
    parser.add_argument("--heartbeat", type=float, help="--embedded: heartbeat_interval (default: none)")
    args = parser.parse_args()
    unpatched = args.kombu == "unpatched"
    if unpatched:
        unpatch()
    with bench_services() as urls, tempfile.TemporaryDirectory() as folder:
        if args.embedded:
            embedded(urls, args.tasks, args.heartbeat)
            return
        print(f"kombu {args.kombu} | broker | pool | start | pick-up p50 | p99 | max ms | drain tasks/s")
        for broker in args.brokers.split(","):
            for pool in args.pools.split(","):
                for start in range(1, args.starts + 1):
                    run = measure(brokers(urls)[broker], Path(folder), pool, args.tasks, args.drain, unpatched)
                    delays = run["delays"]
                    figures = f"{statistics.median(delays):.1f} | {percentile(delays, 99):.1f} | {max(delays):.1f}"
                    print(f"| {broker} | {pool} | {start} | {figures} | {run['rate']:.0f}", flush=True)


if __name__ == "__main__":
    main()
