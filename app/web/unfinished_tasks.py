"""A cap on a client's tasks queued or running at once (``limits.unfinished_tasks``), past which 429.

A client's started tasks are kept with the time they started, in ``limits.storage_url``
as the rate is (limits.py); past the cap, those the result backend says have finished are
let go first, so nothing needs to be told when a task ends, and nothing drifts. In the
result backend's own Redis (the default), a start is counted in the same Lua call as its
id record (celery_app.FlaskTask, app/fixes/redis_results.py): one Redis call a start.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import NamedTuple

import redis
from celery import Celery, states
from flask import current_app
from limits.errors import StorageError
from werkzeug.exceptions import TooManyRequests

from app.web.auth import who

# A start added, those up to ARGV[3] forgotten, how many are kept (past ARGV[4], the start taken out again):
# one Redis call (EVALSHA), as app/fixes/redis_results.py counts it beside a task's id record.
ADD = "redis.call('ZADD',KEYS[1],ARGV[2],ARGV[1]) redis.call('ZREMRANGEBYSCORE',KEYS[1],0,ARGV[3])"
ADD += " local n = redis.call('ZCARD',KEYS[1]) if n > tonumber(ARGV[4]) then redis.call('ZREM',KEYS[1],ARGV[1]) end"
ADD += " return n"


def storage(url: str, timeouts: dict[str, str | int], beside_id_records: bool) -> RedisStarted | MemoryStarted:
    """Where started tasks are kept: Redis for a ``redis://`` URL (beside the id records if theirs), else memory."""
    return RedisStarted(url, timeouts, beside_id_records) if url.startswith("redis") else MemoryStarted()


class Slot(NamedTuple):
    """A start's place among its client's started tasks (``key``), kept from ``now`` unless past ``cap``."""

    key: str
    task_id: str
    now: float
    forget_before: float
    cap: int

    def take(self, count: Callable[[Slot], int]) -> None:
        """Count the start (``count``: how many are kept with it; past the cap, it is not), or 429 at the cap.

        Past the cap, the tasks the result backend says have finished are let go and it is counted again.
        """
        if count(self) > self.cap:
            started, backend = current_app.extensions["started_tasks"], current_app.extensions["celery"].backend
            ids = started.members(self.key)
            ended = [task_id for task_id in ids if backend.get_state(task_id) in states.READY_STATES]
            if ended:
                started.remove(self.key, *ended)
            if len(ids) - len(ended) >= self.cap or count(self) > self.cap:
                cap = f"At most {self.cap} tasks of a client may be queued or running"
                raise TooManyRequests(f"{cap}; try again once one ends.")


@contextmanager
def unfinished_slot(celery_app: Celery, task_id: str) -> Iterator[Slot | None]:
    """Count the task among its client's unfinished ones inside, or 429 at the cap; uncounted if the body fails.

    Counted in the result backend's Redis, the slot is yielded instead, for the task's id record
    to take in its own call (celery_app.FlaskTask): one Redis call a start fewer.
    """
    started, now = current_app.extensions["started_tasks"], time.time()
    # Kept as long as results are (result_expires; when those never expire, forever).
    forget_before = now - (celery_app.backend.prepare_expires(None, float) or now)
    slot = Slot(f"started-tasks:{who()}", task_id, now, forget_before, current_app.config["LIMITS"]["unfinished_tasks"])
    if not started.beside_id_records:
        slot.take(started.add)
    try:
        yield slot if started.beside_id_records else None
    except BaseException:
        started.remove(slot.key, task_id)
        raise


@contextmanager
def _storage_errors() -> Iterator[None]:
    """The count's Redis errors raised as Flask-Limiter's storage raises them: the limits' 503, no one else's."""
    try:
        yield
    except redis.RedisError as error:
        raise StorageError(error) from error


class RedisStarted:
    """A client's started tasks in Redis: a sorted set, task id -> when it started."""

    def __init__(self, url: str, timeouts: dict[str, str | int], beside_id_records: bool = False) -> None:
        self._client = redis.Redis.from_url(url, decode_responses=True, **timeouts)
        self._add = self._client.register_script(ADD)
        # The result backend's own Redis: a task's id record adds it, in the same call (Slot).
        self.beside_id_records = beside_id_records

    @_storage_errors()
    def add(self, slot: Slot) -> int:
        return int(self._add(keys=[slot.key], args=[slot.task_id, slot.now, slot.forget_before, slot.cap]))

    @_storage_errors()
    def members(self, key: str) -> list[str]:
        return [str(task_id) for task_id in self._client.zrange(key, 0, -1)]

    @_storage_errors()
    def remove(self, key: str, *task_ids: str) -> None:
        self._client.zrem(key, *task_ids)


class MemoryStarted:
    """The same in this process's memory."""

    beside_id_records = False

    def __init__(self) -> None:
        self._keys: dict[str, dict[str, float]] = {}
        self._lock = threading.Lock()

    def add(self, slot: Slot) -> int:
        with self._lock:
            ids = self._keys.setdefault(slot.key, {})
            ids[slot.task_id] = slot.now
            for old in [task_id for task_id, at in ids.items() if at <= slot.forget_before]:
                del ids[old]
            if (kept := len(ids)) > slot.cap:
                del ids[slot.task_id]
            return kept

    def members(self, key: str) -> list[str]:
        with self._lock:
            return list(self._keys[key])

    def remove(self, key: str, *task_ids: str) -> None:
        with self._lock:
            for task_id in task_ids:
                self._keys[key].pop(task_id, None)
