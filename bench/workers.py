"""Worker throughput of a no-op task: the factory's app-context Task against bare Celery."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from celery import Celery

from bench import ROOT
from bench.tasks import NOOP

# Same broker, config, pool and concurrency; only the app (and where its no-op comes from) differs.
APPS = {"app context": ("celery_worker.celery", ["bench.tasks"]), "bare Celery": ("bench.bare", [])}
# Flask's example's worker: Celery's own defaults (early acks, a prefetch of 4, no STARTED).
CELERY_DEFAULTS = "bare Celery, Celery's defaults"
WORKER_APPS = {**APPS, CELERY_DEFAULTS: ("bench.bare_defaults", [])}


@contextmanager
def worker(variant: str, pool: str, env: dict[str, str], queue: str, client: Celery) -> Iterator[int]:
    """A worker process of `variant` consuming `queue`, started and ready, until the block ends; yields its pid."""
    app, includes = WORKER_APPS[variant]
    concurrency = "1" if pool == "solo" else "2"
    command = [sys.executable, "-m", "celery", "-A", app, "worker", f"--pool={pool}", f"--concurrency={concurrency}"]
    command += ["--without-mingle", "--loglevel=warning", f"--queues={queue}"]
    command += [f"--include={','.join(includes)}"] if includes else []
    with answering(command, env, client) as pid:
        yield pid


@contextmanager
def answering(command: list[str], env: dict[str, str], client: Celery) -> Iterator[int]:
    """The worker `command` starts, once it answers a ping, until the block ends; yields its pid."""
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # Publish only once it answers: a figure measures the worker, not its start.
        while not client.control.ping(timeout=0.5):
            assert process.poll() is None, "the worker exited"
        yield process.pid
    finally:
        process.terminate()
        process.wait(timeout=60)


def drain_rate(variant: str, pool: str, env: dict[str, str], client: Celery, tasks: int = 2000) -> float:
    """Tasks per second: `tasks` no-ops, then one whose result is awaited, through a fresh worker."""
    queue = f"bench-worker-{pool}"
    with worker(variant, pool, env, queue, client):
        return drain(client, queue, tasks)


def drain(client: Celery, queue: str, tasks: int) -> float:
    """Tasks per second: `tasks` no-ops published to `queue`, then one whose result is awaited.

    The worker takes them in order (prefetch 1), so the last one's result marks the end;
    the client publishes without confirms, far faster than any worker drains.
    """
    started = time.perf_counter()
    with client.producer_or_acquire() as producer:
        for _ in range(tasks):
            client.send_task(NOOP, queue=queue, producer=producer)
    last = client.send_task(NOOP, queue=queue, ignore_result=False)
    # Polled, not last.get(): the stored state needs no pub/sub subscription, whose
    # SUBSCRIBE and GET travel on two connections that Redis may serve in either order.
    deadline = time.monotonic() + 300
    while not last.ready():
        assert time.monotonic() < deadline, f"{queue}: {tasks} tasks not drained in 300 s"
        time.sleep(0.01)
    return (tasks + 1) / (time.perf_counter() - started)
