"""Polling for what a test cannot be told by an event of its own: a container's health, a file's mtime, a log line."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_until(condition: Callable[[], bool], failure: str | Callable[[], object], timeout: float = 30) -> float:
    """Poll ``condition`` until it holds: the seconds it took; past ``timeout`` fail with ``failure``."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout, failure() if callable(failure) else failure
        time.sleep(0.2)
    return time.monotonic() - started
