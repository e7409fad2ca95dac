"""A no-op task for the worker benchmark, run through the factory's app-context Task."""

from celery import shared_task

NOOP = "bench.noop"


@shared_task(name=NOOP, ignore_result=True)  # type: ignore[untyped-decorator]
def noop() -> None:
    """Nothing: what remains is the cost of delivering and running a task."""
