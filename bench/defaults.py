"""What each of the factory's safety defaults costs a worker, on short and on long tasks.

    python -m bench.defaults [--repeat 3] [--pools prefork,solo]

The factory departs from Celery's own defaults for safety (the template's docs/configuration.md): late
acks (a task whose worker dies is redelivered), a prefetch of 1 (a worker process does not
hold tasks others could run) and task_track_started (GET shows STARTED). Each variant is
a fresh worker, `celery -A celery_worker.celery worker --include=bench.tasks,bench.drains`
(prefork --concurrency=2; solo on request), whose config file is the bench's with the
settings named changed in its `celery:` section; the reference is a bare Celery app with
Celery's own defaults (bench/bare_defaults.py). With config/short-tasks.yaml present, its
`celery:` settings are a variant too. Each worker drains (bench/drains.py), as
bench/workers.drain_rate does (published without confirms, then one task whose stored
result marks the end):

- short: 2,000 no-ops that store their result (bench.drains.stored_noop): bench.tasks.noop ignores its
  result, and Celery's tracer then skips STARTED, so task_track_started would cost nothing;
- no-op: 2,000 of bench.tasks.noop (result ignored): the issue's worker figure;
- long: 100 runs of app.tasks.sample_task(0.05) (ten progress writes each), every result
  awaited (with a prefetch above 1 the last one published may end before others).

Each drain also gives the worker's CPU time a task (the worker and its pool processes,
psutil): a second view of the same cost, which other jobs on the machine disturb too
(the header gives the load average as each worker finished). Variants run interleaved
(bench.report.interleave); `--raw` also prints every figure, to pair each variant's run
with bare Celery's of the same round. Services as for `python -m bench`. Everything made
is removed, also after an error or SIGTERM: the queue (bench.drains.QUEUE) and its
exchange, Celery's control and event exchanges if they were not there before, and the
results stored.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import yaml
from celery import Celery

from bench import ROOT, leftovers, report, workers
from bench.drains import CPU, LOAD_AVERAGE, QUEUE, loads, run
from bench.report import Row, interleave
from bench.services import bench_services
from tests.integration.services import Services

PROFILE = ROOT / "config" / "short-tasks.yaml"
BARE = "bare Celery, Celery's own defaults"
SHORT_TASKS = "short-tasks profile (config/short-tasks.yaml)"
# The factory's defaults each turned back to Celery's (CELERY_DEFAULTS has the others).
RELAXED: dict[str, Any] = {"task_acks_late": False, "worker_prefetch_multiplier": 4, "task_track_started": False}
VARIANTS: dict[str, dict[str, Any]] = {
    "project defaults": {},
    "late acks off": {"task_acks_late": False},
    "prefetch 4": {"worker_prefetch_multiplier": 4},
    "task_track_started off": {"task_track_started": False},
    "all three relaxed": RELAXED,
}
POOLS = workers.CONCURRENCY


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


def rows(urls: Services, folder: Path, client: Celery, repeat: int, pools: tuple[str, ...] = ("prefork",)) -> list[Row]:
    """Each drain through each variant's worker and bare Celery's, per pool, interleaved: tasks/s, CPU ms a task.

    `folder` receives the variants' config files, in a subfolder (its bench.yaml is left
    alone). The last row is the 1-minute load average as each worker finished its drains:
    the machine's other load (above its number of cores, other jobs competed for them).
    """
    configs = write_configs(Path(tempfile.mkdtemp(prefix="defaults-", dir=folder)), urls)
    drains = loads()
    keep = leftovers.existing_exchanges(client)
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
        leftovers.remove_queue(client, QUEUE, keep)
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
    report.exit_on_signals()  # workers stopped, results deleted
    with bench_services() as urls, tempfile.TemporaryDirectory() as folder:
        found = rows(urls, Path(folder), report.client(urls), args.repeat, pools)
    print(report.header(urls.source))
    averages = found[-1].values
    print(f"load average (1 min) as each worker finished: {min(averages):.2f}-{max(averages):.2f}")
    for pool in pools:
        print(f"\n{pool_label(pool)}: median (min-max) of {args.repeat}\n\n{table(found[:-1], pool)}")
    if args.raw:
        print("\n" + "\n".join(f"{row.measure} | {row.variant} | {row.values}" for row in found))


if __name__ == "__main__":
    main()
