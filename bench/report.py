"""Repetition, the bench's own config and client, the run's header and the Markdown table."""

from __future__ import annotations

import os
import platform
import signal
import statistics
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from celery import Celery

from app.settings.celery_defaults import CELERY_DEFAULTS
from bench.services import bench_services
from tests.integration.services import Services

T = TypeVar("T")
QUEUE = "bench"


@dataclass
class Row:
    """One line of the table: a measure of one variant, over the repetitions."""

    measure: str
    variant: str
    values: list[float]
    unit: str
    reference: str = ""  # the variant of the same measure this one is shown as a ratio to


@dataclass
class Bench:
    """What every section of the run shares: the services, the config's environment, a client."""

    urls: Services
    env: dict[str, str]
    client: Celery
    folder: Path
    repeat: int


def interleave(repeat: int, variants: Mapping[str, Callable[[], T]]) -> dict[str, list[T]]:
    """Run the variants in turn (A B A B ...), `repeat` times each, so drift hits all alike."""
    results: dict[str, list[T]] = {name: [] for name in variants}
    for _ in range(repeat):
        for name, run in variants.items():
            results[name].append(run())
    return results


@contextmanager
def bench_session(repeat: int) -> Iterator[Bench]:
    """The services (bench.services), a config for them in a folder of its own, the client: until the block ends."""
    with bench_services() as urls, tempfile.TemporaryDirectory() as folder:
        env = {**os.environ, "FLASK_CONFIG": str(write_config(Path(folder), urls))}
        yield Bench(urls, env, client(urls), Path(folder), repeat)


def write_config(folder: Path, urls: Services) -> Path:
    """The config the served app and the workers read: sample task sleeps 0, own queue."""
    path = folder / "bench.yaml"
    celery = {"broker_url": urls.broker_url, "result_backend": urls.result_backend, "task_default_queue": QUEUE}
    # Without authentication, and limits far above any load here (counted in memory): the
    # bench measures the task path as it was measured before (docs/security.md).
    limits = {"start_rate": "1000000/second", "unfinished_tasks": 1000000, "storage_url": "memory://"}
    config = {"auth": False, "limits": limits, "sample_task_seconds": 0, "celery": celery}
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


def config_with(base: Path, path: Path, celery: dict[str, Any]) -> Path:
    """A copy of the config file `base` at `path`, its `celery:` section updated with `celery`."""
    config = yaml.safe_load(base.read_text())
    config["celery"].update(celery)
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


def client(urls: Services) -> Celery:
    """The bench's own Celery client: publishes without confirms, purges, awaits results."""
    celery = Celery("bench-client", broker=urls.broker_url, backend=urls.result_backend)
    celery.conf.update({**CELERY_DEFAULTS, "broker_transport_options": {}, "task_default_queue": QUEUE})
    return celery


def exit_on_signals() -> None:
    """SIGTERM and SIGHUP (kill, a CI timeout, a closed terminal) exit as an error does: the clean-ups run."""
    for stopping in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(stopping, lambda number, _: sys.exit(128 + number))


def header(source: str) -> str:
    """The run's first line: the machine, its cores, Python, and where the services came from."""
    return f"{platform.node()}: {os.cpu_count()} cores, Python {platform.python_version()}, {source}"


def table(rows: list[Row]) -> str:
    """Markdown: median and min-max per row, and its ratio to its reference variant where it has one."""
    medians = {(row.measure, row.variant): statistics.median(row.values) for row in rows}
    lines = ["| measure | variant | median | min-max | ratio |", "|---|---|---|---|---|"]
    for row in rows:
        middle = medians[(row.measure, row.variant)]
        spread = f"{_figure(min(row.values))}-{_figure(max(row.values))}" if len(row.values) > 1 else ""
        ratio = f"{middle / medians[(row.measure, row.reference)]:.2f} x {row.reference}" if row.reference else ""
        lines.append(f"| {row.measure} | {row.variant} | {_figure(middle)} {row.unit} | {spread} | {ratio} |")
    return "\n".join(lines)


def _figure(value: float) -> str:
    """Three significant digits, or whole numbers from 1,000 up: 0.0412, 1.71, 36.2, 1,285."""
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"
