"""The benchmarks' Celery workers: one way to start one and stop it, and the no-op throughput through it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import IO, Any

import psutil  # type: ignore[import-untyped]  # a dev requirement without stubs
from celery import Celery

from bench import ROOT
from bench.tasks import NOOP

# Same broker, config, pool and concurrency; only the app (and where its no-op comes from) differs.
APPS = {"app context": ("celery_worker.celery", ["bench.tasks"]), "bare Celery": ("bench.bare", [])}
# Flask's example's worker: Celery's own defaults (early acks, a prefetch of 4, no STARTED).
CELERY_DEFAULTS = "bare Celery, Celery's defaults"
WORKER_APPS = {**APPS, CELERY_DEFAULTS: ("bench.bare_defaults", [])}
CONCURRENCY = {"prefork": "2", "solo": "1"}


def command(app: str, pool: str, queue: str, *options: str) -> list[str]:
    """`celery -A app worker` of `pool` consuming `queue`, without mingle, logging warnings; `options` added."""
    command = [sys.executable, "-m", "celery", "-A", app, "worker", f"--pool={pool}", "--without-mingle"]
    return [*command, "--loglevel=warning", f"--queues={queue}", *options]


@contextmanager
def worker(
    variant: str, pool: str, env: Mapping[str, str], queue: str, client: Celery, include: Sequence[str] = ()
) -> Iterator[psutil.Process]:
    """A worker of `variant` (WORKER_APPS), also loading `include`, on `queue`: as `answering` runs it."""
    app, includes = WORKER_APPS[variant]
    modules = [*includes, *include]
    options = [f"--concurrency={CONCURRENCY[pool]}", *([f"--include={','.join(modules)}"] if modules else [])]
    with answering(command(app, pool, queue, *options), env, client) as process:
        yield process


@contextmanager
def answering(
    command: list[str], env: Mapping[str, str], client: Celery, timeout: float = 60
) -> Iterator[psutil.Process]:
    """The worker `command` starts, once it answers a ping, until the block ends; then stopped.

    Publish only once it answers: a figure measures the worker, not its start. Its log is
    kept to say why, should it not answer within `timeout` seconds. A session of its own:
    its pool processes can be killed with it, should it hang on stopping.
    """
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log, start_new_session=True
        )
        try:
            _answered(process, client, log, timeout)
            yield psutil.Process(process.pid)
        finally:
            _stop(process)


def _answered(process: subprocess.Popen[bytes], client: Celery, log: IO[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not client.control.ping(timeout=0.5):
        if process.poll() is not None or time.monotonic() > deadline:
            log.seek(0)
            raise RuntimeError(f"the worker did not start:\n{log.read().decode(errors='replace')[-2000:]}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Warm shutdown (it finishes its tasks); killed with its pool processes if it takes over a minute."""
    process.terminate()
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


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
    until_ready([client.send_task(NOOP, queue=queue, ignore_result=False)], time.perf_counter() + 300)
    return (tasks + 1) / (time.perf_counter() - started)


def until_ready(results: list[Any], deadline: float, poll: float = 0.01) -> None:
    """Until each of `results` is ready, or fail at `deadline` (time.perf_counter()).

    Polled, not get(): the stored state needs no pub/sub subscription, whose SUBSCRIBE and
    GET travel on two connections that Redis may serve in either order.
    """
    while results := [result for result in results if not result.ready()]:
        assert time.perf_counter() < deadline, f"{len(results)} tasks not done by the deadline"
        time.sleep(poll)
