"""A fresh worker draining the loads of bench/defaults.py (its docstring says which and why), one run."""

from __future__ import annotations

import os
import time
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]  # a dev requirement without stubs
from celery import Celery, shared_task
from kombu.utils.uuid import uuid

from bench import leftovers, workers
from bench.processes import cpu_seconds
from bench.tasks import NOOP
from bench.workers import until_ready

STORED_NOOP = "bench.stored_noop"
SAMPLE = "app.tasks.sample_task"
QUEUE = "bench-defaults"
CPU = "worker CPU a task"
LOAD_AVERAGE = "load average (1 min) as each worker finished"
WORKERS = {  # bench.workers.WORKER_APPS' worker of a kind, and the modules of the loads' tasks it lacks
    "project": ("app context", ("bench.drains",)),
    "bare": (workers.CELERY_DEFAULTS, ("app.tasks",)),
}


@shared_task(name=STORED_NOOP)  # type: ignore[untyped-decorator]
def stored_noop() -> None:
    """Nothing, but its result (None) is stored: SUCCESS, after STARTED where tracked."""


@dataclass(frozen=True)
class Load:
    """Tasks a worker drains: `tasks` of `task`, then a STORED_NOOP marker or (`await_all`) every result."""

    label: str  # the table's column
    title: str  # the row's measure
    task: str
    tasks: int
    args: tuple[Any, ...] = ()
    await_all: bool = False


def loads(short: int = 2000, long: int = 100, seconds: float = 0.05) -> list[Load]:
    """The three drains, in the order each worker runs them."""
    return [
        Load("short", "short task (a no-op storing its result)", STORED_NOOP, short),
        Load("no-op", "no-op task (result ignored)", NOOP, short),
        Load("long", f"long task (sample, {seconds} s)", SAMPLE, long, (seconds,), await_all=True),
    ]


def drain(client: Celery, load: Load, worker: psutil.Process, made: list[str]) -> tuple[float, float]:
    """Tasks per second through the running `worker`, and its CPU milliseconds a task; ids added to `made`."""
    ids = [uuid() for _ in range(load.tasks + 1)]
    made += ids  # before publishing: a run that fails halfway still removes what it stored
    cpu, started = cpu_seconds(worker), time.perf_counter()
    with client.producer_or_acquire() as producer:
        sent = [
            client.send_task(load.task, load.args, task_id=task_id, queue=QUEUE, producer=producer)
            for task_id in ids[:-1]
        ]
    awaited = sent if load.await_all else [client.send_task(STORED_NOOP, task_id=ids[-1], queue=QUEUE)]
    # The last one published first: it ends about last, so the others are swept about once.
    for results in (awaited[-1:], awaited):
        until_ready(results, started + 300)
    elapsed, tasks = time.perf_counter() - started, len(sent) + (0 if load.await_all else 1)
    return tasks / elapsed, (cpu_seconds(worker) - cpu) * 1000 / tasks


def run(kind: str, pool: str, config: Path, client: Celery, backend_url: str, drains: list[Load]) -> dict[str, float]:
    """A fresh worker drains each of `drains`, then is stopped and its traces removed.

    Keyed by the measure's name (bench.report.Row.measure's end): tasks/s, CPU ms a task, and
    the 1-minute load average once done.
    """
    variant, include = WORKERS[kind]
    env = {**os.environ, "FLASK_CONFIG": str(config)}
    made: list[str] = []
    figures = {}
    try:
        with workers.worker(variant, pool, env, QUEUE, client, include) as process:
            for load in drains:
                figures[load.title], figures[f"{load.title}, {CPU}"] = drain(client, load, process, made)
            figures[LOAD_AVERAGE] = os.getloadavg()[0]
            return figures
    finally:  # the worker has stopped: nothing writes these results again
        leftovers.forget(client, backend_url, made)
        with client.connection_for_write() as connection, suppress(*connection.channel_errors):
            connection.default_channel.queue_purge(QUEUE)  # what a failed run left queued (if declared)
