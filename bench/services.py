"""Where the benchmarks' broker and result backend come from: the TEST_* URLs, else containers."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from tests.integration import services


@contextmanager
def bench_services() -> Iterator[services.Services]:
    """The services the integration tier would use (TEST_BROKER_URL / TEST_RESULT_BACKEND, else testcontainers)."""
    if (found := services.from_environment()) is not None:
        yield found
        return
    with services.containers() as started:
        yield started.services
