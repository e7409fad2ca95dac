"""A task's state only moves forward: nothing replaces a SUCCESS, a FAILURE or a REVOKED,
and PENDING replaces nothing but PENDING.

A task's writes can come late: a duplicate run (a redelivery, a client's retry after a
503), a retry scheduled before a cancel, the PROGRESS of a run a cancel is stopping.
Celery's backends keep only a SUCCESS, so a FAILURE could turn into a cancel's REVOKED and
a cancel into a SUCCESS, and ``DELETE`` could answer for a state that does not stay. And
every message sent records PENDING first (celery_app.FlaskTask), also when a task is sent
again while it runs (a retry, a held-back duplicate). Each backend the factory selects
checks the stored state and writes in one step: Redis in a
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
