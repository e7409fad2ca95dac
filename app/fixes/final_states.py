"""A task's final state stays: no later write replaces a SUCCESS, a FAILURE or a REVOKED.

A task's writes can come late: a duplicate run (a redelivery, a client's retry after a
503), a retry scheduled before a cancel, the PROGRESS of a run a cancel is stopping.
Celery's backends keep only a SUCCESS, so a FAILURE could turn into a cancel's REVOKED and
a cancel into a SUCCESS, and ``DELETE`` could answer for a state that does not stay. Each
backend the factory selects checks the stored state and writes in one step: Redis in a
Lua script (redis_results.py), a database under the row's lock (database_results.py),
the file backend under a lock file (file_results.py), the cache backend under a lock of
its process (here: enough for the in-memory cache; memcached has no such step).
"""

from __future__ import annotations

import json
import threading
from typing import Any

from celery import states
from celery.backends.cache import CacheBackend

FINAL_STATES = states.READY_STATES


def is_final(record: bytes | str | None) -> bool:
    """Whether a stored record (JSON, or nothing) holds a final state."""
    if record is None:
        return False
    try:
        meta = json.loads(record)
    except ValueError:  # not JSON: not a task's record
        return False
    return isinstance(meta, dict) and meta.get("status") in FINAL_STATES


class FinalCacheBackend(CacheBackend):  # type: ignore[misc]
    """Celery's cache backend that keeps a final record (within one process)."""

    _lock = threading.Lock()

    def set(self, key: Any, value: Any) -> None:
        with self._lock:
            if not is_final(self.get(key)):
                super().set(key, value)
