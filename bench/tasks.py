"""The benchmarks' tasks, run through the factory's app-context Task (bench.bare registers them bare)."""

from datetime import UTC, datetime

from celery import shared_task

NOOP = "bench.noop"
NOW = "bench.now"


@shared_task(name=NOOP, ignore_result=True)  # type: ignore[untyped-decorator]
def noop() -> None:
    """Nothing: what remains is the cost of delivering and running a task."""


@shared_task(name=NOW, ignore_result=False)  # type: ignore[untyped-decorator]
def now() -> str:
    """The time, stored as the result: Flask's example's task, next to the sample task with 0 s of sleep."""
    return datetime.now(UTC).isoformat()
