"""Repetition, the bench's own config and client, and the Markdown table."""

from __future__ import annotations

import secrets
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import yaml
from celery import Celery

from app.settings.celery_defaults import CELERY_DEFAULTS
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
    ceiling: bool = False  # the raw publish rate every dispatch figure is compared to
    dispatch: bool = False  # shown as a ratio to that ceiling


def interleave(repeat: int, variants: dict[str, Callable[[], T]]) -> dict[str, list[T]]:
    """Run the variants in turn (A B A B ...), `repeat` times each, so drift hits all alike."""
    results: dict[str, list[T]] = {name: [] for name in variants}
    for _ in range(repeat):
        for name, run in variants.items():
            results[name].append(run())
    return results


def write_config(folder: Path, urls: Services) -> Path:
    """The config the served app and the workers read: sample task sleeps 0, own queue."""
    path = folder / "bench.yaml"
    celery = {"broker_url": urls.broker_url, "result_backend": urls.result_backend, "task_default_queue": QUEUE}
    path.write_text(yaml.safe_dump({"secret_key": secrets.token_hex(), "sample_task_seconds": 0, "celery": celery}))
    path.chmod(0o600)
    return path


def client(urls: Services) -> Celery:
    """The bench's own Celery client: publishes without confirms, purges, awaits results."""
    celery = Celery("bench-client", broker=urls.broker_url, backend=urls.result_backend)
    celery.conf.update({**CELERY_DEFAULTS, "broker_transport_options": {}, "task_default_queue": QUEUE})
    return celery


def table(rows: list[Row]) -> str:
    """Markdown: median and min-max per row; dispatch rates also as a ratio to raw publish."""
    ceiling = statistics.median(next(r for r in rows if r.ceiling and r.variant == "confirms off").values)
    lines = ["| measure | variant | median | min-max | ratio to raw publish (confirms off) |", "|---|---|---|---|---|"]
    for row in rows:
        middle = statistics.median(row.values)
        spread = f"{min(row.values):,.1f}-{max(row.values):,.1f}" if len(row.values) > 1 else ""
        ratio = f"{middle / ceiling:.3f}" if row.dispatch or row.ceiling else ""
        lines.append(f"| {row.measure} | {row.variant} | {middle:,.1f} {row.unit} | {spread} | {ratio} |")
    return "\n".join(lines)
