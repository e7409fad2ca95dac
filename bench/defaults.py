"""What each of the factory's safety defaults costs a worker, on short and on long tasks.

    python -m bench.defaults [--repeat 3] [--pools prefork,solo]

The factory departs from Celery's own defaults for safety (README, "Configuration"): late
acks (a task whose worker dies is redelivered), a prefetch of 1 (a worker process does not
hold tasks others could run) and task_track_started (GET shows STARTED). Each variant is
a fresh worker, `celery -A celery_worker.celery worker --include=bench.tasks,bench.defaults`
(prefork --concurrency=2; solo on request), whose config file is the bench's with the
settings named changed in its `celery:` section; the reference is a bare Celery app with
Celery's own defaults (bench/bare_defaults.py). With config/short-tasks.yaml present, its
`celery:` settings are a variant too. Each worker drains, as bench/workers.drain_rate does
(published without confirms, then one task whose stored result marks the end):

- short: 2,000 no-ops that store their result (STORED_NOOP): bench.tasks.noop ignores its
  result, and Celery's tracer then skips STARTED, so task_track_started would cost nothing;
- no-op: 2,000 of bench.tasks.noop (result ignored): the issue's worker figure;
- long: 100 runs of app.tasks.sample_task(0.05) (ten progress writes each), every result
  awaited (with a prefetch above 1 the last one published may end before others).

Each drain also gives the worker's CPU time a task (the worker and its pool processes,
psutil): a second view of the same cost, which other jobs on the machine disturb too
(the header gives the load average as each worker finished). Variants run interleaved
(bench.report.interleave); `--raw` also prints every figure, to pair each variant's run
with bare Celery's of the same round. Services as for `python -m bench`. Everything made
is removed, also after an error or SIGTERM: the queue QUEUE and its exchange, Celery's
control and event exchanges if they were not there before, and the results stored.
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]  # a dev requirement without stubs
import redis
import yaml
from celery import Celery, shared_task
from kombu.utils.uuid import uuid

from bench import ROOT, report, workers
from bench.processes import cpu_seconds
from bench.report import Row, interleave
from bench.services import bench_services
from bench.tasks import NOOP
from bench.workers import until_ready
from tests.integration.services import Services

STORED_NOOP = "bench.stored_noop"
SAMPLE = "app.tasks.sample_task"
QUEUE = "bench-defaults"
PROFILE = ROOT / "config" / "short-tasks.yaml"
BARE = "bare Celery, Celery's own defaults"
SHORT_TASKS = "short-tasks profile (config/short-tasks.yaml)"
CPU = "worker CPU a task"
LOAD_AVERAGE = "load average (1 min) as each worker finished"
# The factory's defaults each turned back to Celery's (CELERY_DEFAULTS has the others).
RELAXED: dict[str, Any] = {"task_acks_late": False, "worker_prefetch_multiplier": 4, "task_track_started": False}
VARIANTS: dict[str, dict[str, Any]] = {
    "project defaults": {},
    "late acks off": {"task_acks_late": False},
    "prefetch 4": {"worker_prefetch_multiplier": 4},
    "task_track_started off": {"task_track_started": False},
    "all three relaxed": RELAXED,
}
WORKERS = {  # bench.workers.WORKER_APPS' worker of a kind, and the modules of the loads' tasks it lacks
    "project": ("app context", ("bench.defaults",)),
    "bare": (workers.CELERY_DEFAULTS, ("app.tasks",)),
}
POOLS = workers.CONCURRENCY
# Declared by workers and the client's pings; deleted at the end unless they were there before.
CELERY_EXCHANGES = ("celery.pidbox", "reply.celery.pidbox", "celeryev")


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


def variants() -> dict[str, dict[str, Any]]:
    """VARIANTS, and config/short-tasks.yaml's Celery settings (its URLs aside) when the file exists."""
    found = dict(VARIANTS)
    if PROFILE.exists():
        settings = yaml.safe_load(PROFILE.read_text())["celery"]
        found[SHORT_TASKS] = {k: v for k, v in settings.items() if k not in ("broker_url", "result_backend")}
    return found


def write_configs(folder: Path, urls: Services) -> dict[str, Path]:
    """One config file per variant in `folder`: the bench's (bench.report.write_config), its `celery:` changed."""
    base = report.write_config(folder, urls)  # also the bare app's: it reads the URLs only
    configs = {BARE: base}
    for number, (name, settings) in enumerate(variants().items()):
        configs[name] = report.config_with(base, folder / f"defaults-{number}.yaml", settings)
    return configs


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
        forget(client, backend_url, made)
        with client.connection_for_write() as connection, suppress(*connection.channel_errors):
            connection.default_channel.queue_purge(QUEUE)  # what a failed run left queued (if declared)


def forget(client: Celery, backend_url: str, task_ids: list[str]) -> None:
    """Delete the stored results of `task_ids` (the keys of Celery's Redis backend)."""
    keys = [client.backend.get_key_for_task(task_id) for task_id in task_ids]
    with redis.Redis.from_url(backend_url) as backend:
        for start in range(0, len(keys), 1000):
            backend.delete(*keys[start : start + 1000])


def existing_exchanges(client: Celery) -> set[str]:
    """Those of CELERY_EXCHANGES already on the broker (a passive declare each, on a channel of its own)."""
    found = set()
    with client.connection_for_write() as connection:
        for name in CELERY_EXCHANGES:
            channel = connection.channel()
            try:
                channel.exchange_declare(name, "direct", passive=True)
                found.add(name)
            except connection.channel_errors:  # not found: RabbitMQ closes the channel
                continue
            channel.close()
    return found


def remove_queue(client: Celery, keep: set[str]) -> None:
    """Delete QUEUE, its exchange, and Celery's exchanges but `keep`."""
    with client.connection_for_write() as connection:
        channel = connection.default_channel
        channel.queue_delete(QUEUE)
        for name in [QUEUE, *(name for name in CELERY_EXCHANGES if name not in keep)]:
            channel.exchange_delete(name)


def rows(urls: Services, folder: Path, client: Celery, repeat: int, pools: tuple[str, ...] = ("prefork",)) -> list[Row]:
    """Each drain through each variant's worker and bare Celery's, per pool, interleaved: tasks/s, CPU ms a task.

    `folder` receives the variants' config files, in a subfolder (its bench.yaml is left
    alone). The last row is the 1-minute load average as each worker finished its drains:
    the machine's other load (2 cores: above 2, other jobs competed for them).
    """
    configs = write_configs(Path(tempfile.mkdtemp(prefix="defaults-", dir=folder)), urls)
    drains = loads()
    keep = existing_exchanges(client)
    found: list[Row] = []
    load_averages: list[float] = []
    try:
        for pool in pools:
            runners: dict[str, Callable[[], dict[str, float]]] = {
                name: partial(
                    run, "bare" if name == BARE else "project", pool, configs[name], client, urls.result_backend, drains
                )
                for name in [*variants(), BARE]
            }
            for name, runs in interleave(repeat, runners).items():
                for measure in runs[0]:
                    if measure == LOAD_AVERAGE:
                        load_averages += [figures[measure] for figures in runs]
                    else:
                        unit = "ms" if measure.endswith(CPU) else "tasks/s"
                        found.append(
                            Row(f"{pool_label(pool)}, {measure}", name, [figures[measure] for figures in runs], unit)
                        )
    finally:
        remove_queue(client, keep)
    return [*found, Row(LOAD_AVERAGE, "", load_averages, "")]


def pool_label(pool: str) -> str:
    """The measures' prefix for `pool`: "worker prefork x2", "worker solo"."""
    return f"worker {pool}" + (f" x{POOLS[pool]}" if pool == "prefork" else "")


def table(rows: list[Row], pool: str) -> str:
    """Markdown for `pool`: a line per variant; each load's tasks/s, its ratio to bare Celery, CPU ms a task.

    Each figure the median (min-max) over the repetitions; ratios of medians.
    """
    prefix = f"{pool_label(pool)}, "
    mine = {
        (row.measure.removeprefix(prefix), row.variant): row.values for row in rows if row.measure.startswith(prefix)
    }
    header = ["variant"]
    for load in loads():
        header += [f"{load.label}, tasks/s", "ratio to bare", f"{load.label}, worker CPU ms a task"]
    lines = ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    for variant in dict.fromkeys(variant for _, variant in mine):
        cells = [variant]
        for load in loads():
            rates, cpu = mine[load.title, variant], mine[f"{load.title}, {CPU}", variant]
            ratio = statistics.median(rates) / statistics.median(mine[load.title, BARE])
            cells += [spread(rates, 0), f"{ratio:.2f}", spread(cpu, 2)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def spread(values: list[float], digits: int) -> str:
    """Median (min-max)."""
    return f"{statistics.median(values):,.{digits}f} ({min(values):,.{digits}f}-{max(values):,.{digits}f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="repetitions of each variant (default: 3)")
    parser.add_argument("--pools", default="prefork", help=f"comma-separated, of {', '.join(POOLS)} (default: prefork)")
    parser.add_argument("--raw", action="store_true", help="also each row's figures, in the order run")
    args = parser.parse_args()
    pools = tuple(args.pools.split(","))
    # Stopped (kill, a CI timeout): clean up as on an error, workers stopped, results deleted.
    for stopping in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(stopping, lambda number, _: sys.exit(128 + number))
    with bench_services() as urls, tempfile.TemporaryDirectory() as folder:
        found = rows(urls, Path(folder), report.client(urls), args.repeat, pools)
    print(f"{platform.node()}: {os.cpu_count()} cores, Python {platform.python_version()}, {urls.source}")
    averages = found[-1].values
    print(f"load average (1 min) as each worker finished: {min(averages):.2f}-{max(averages):.2f}")
    for pool in pools:
        print(f"\n{pool_label(pool)}: median (min-max) of {args.repeat}\n\n{table(found[:-1], pool)}")
    if args.raw:
        print("\n" + "\n".join(f"{row.measure} | {row.variant} | {row.values}" for row in found))


if __name__ == "__main__":
    main()
