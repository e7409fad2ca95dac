"""A task's state only moves forward: nothing replaces a SUCCESS, a FAILURE or a REVOKED; PENDING replaces only PENDING.

Writes come late (a duplicate run, a retry scheduled before a cancel, a cancelled run's
PROGRESS; every message sent records PENDING first) and Celery keeps only a SUCCESS. Each
backend the factory selects checks and writes in one step: Redis in Lua (redis_results.py),
a database under the row's lock, the file backend under a lock file, the cache backend here
under a process lock (enough for the in-memory cache). Delete once Celery keeps every final
state (the template's docs/upstream.md, "a later write replaces a finished result").
"""

from __future__ import annotations

import json
import threading
from typing import Any

from celery import states
from celery.backends.cache import CacheBackend

FINAL_STATES = states.READY_STATES


def replaces(current: str | None, new: str | None) -> bool:
    """Whether a record of state ``new`` may replace one of state ``current`` (None: no record, or not a task's)."""
    if current in FINAL_STATES:
        return False
    return new != states.PENDING or current in (None, states.PENDING)


def status(record: bytes | str | None) -> str | None:
    """The state a stored record (JSON) holds; None for no record, or one that is not a task's."""
    try:
        meta = json.loads(record) if record is not None else None
    except ValueError:
        return None
    return meta.get("status") if isinstance(meta, dict) else None


class FinalCacheBackend(CacheBackend):  # type: ignore[misc]
    """Celery's cache backend whose task states only move forward (within one process)."""

    _lock = threading.Lock()

    def set(self, key: Any, value: Any) -> None:
        with self._lock:
            if replaces(status(self.get(key)), status(value)):
                super().set(key, value)
