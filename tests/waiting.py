"""Polling for what a test cannot be told by an event of its own: a container's health, a file's mtime."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_until(condition: Callable[[], bool], failure: str | Callable[[], object], timeout: float = 30) -> None:
    """Poll ``condition`` until it holds; past ``timeout`` seconds fail with ``failure`` (or what it returns then)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, failure() if callable(failure) else failure
        time.sleep(0.2)
