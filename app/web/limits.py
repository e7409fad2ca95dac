"""How much a client may start: a rate (Flask-Limiter), and a cap on its tasks queued or running at once.

Both count per client (per address without authentication), over every exposed task, in
``limits.storage_url``: the result backend's Redis where it is one, so that every process
of the service counts alike; else in the memory of each process (the embedded mode's one).
Past either, 429 (the rate's with ``Retry-After``). A client's started tasks are kept
with the time they started; past the cap, those the result backend says have finished
are let go first, so nothing needs to be told when a task ends, and nothing drifts. The
limits' Redis out of reach answers 503 within its socket timeouts, as the result
backend's does; a Redis error elsewhere is not theirs to name.
"""

from __future__ import annotations

import functools
import logging
import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import NamedTuple

import redis
from celery import Celery, states
from flask import Flask, current_app, request
from flask.typing import ResponseReturnValue
from flask_limiter import Limiter, RateLimitExceeded
from limits.errors import StorageError
from werkzeug.exceptions import ServiceUnavailable, TooManyRequests

from app.observability.logs import current_client
from app.observability.metrics import UNAVAILABLE

logger = logging.getLogger(__name__)
# A start added, those up to ARGV[3] forgotten, how many are kept (past ARGV[4], the start taken out again):
# one Redis call (EVALSHA), as app/fixes/redis_results.py counts it beside a task's id record.
ADD = "redis.call('ZADD',KEYS[1],ARGV[2],ARGV[1]) redis.call('ZREMRANGEBYSCORE',KEYS[1],0,ARGV[3])"
ADD += " local n = redis.call('ZCARD',KEYS[1]) if n > tonumber(ARGV[4]) then redis.call('ZREM',KEYS[1],ARGV[1]) end"
ADD += " return n"


def init_app(app: Flask) -> None:
    """Limit how fast each client starts `app`'s tasks, and how many it may have unfinished."""
    url, rate = app.config["LIMITS"]["storage_url"], app.config["LIMITS"]["start_rate"]
    # The Redis timeouts of the factory's Celery settings: a stalled Redis fails a request in time.
    conf = app.extensions["celery"].conf
    timeouts = {name: conf[f"redis_{name}"] for name in ("socket_connect_timeout", "socket_timeout")}
    limiter = Limiter(
        key_func=_who,
        app=app,
        storage_uri=url,
        storage_options={**timeouts, "wrap_exceptions": True},  # its errors as StorageError: theirs alone answer 503
        application_limits=[rate],  # fixed window (Flask-Limiter's default): one Redis call a start
        application_limits_exempt_when=lambda: not _starts_a_task(),
        headers_enabled=False,  # X-RateLimit-* would read the window back each start; Retry-After: on the 429 alone
    )
    # Named as the client knows it: by default the limits count in the result backend's Redis.
    in_backend = url == app.config["CELERY"]["result_backend"]
    name = "result backend" if in_backend else "limits storage"
    if url.startswith("redis"):
        beside = in_backend and hasattr(app.extensions["celery"].backend, "record_sent")
        app.extensions["started_tasks"] = _RedisStarted(url, timeouts, beside)
    else:
        app.extensions["started_tasks"] = _MemoryStarted()
    app.register_error_handler(StorageError, functools.partial(_unavailable, name))
    app.register_error_handler(RateLimitExceeded, functools.partial(_retry_after, limiter))


def _unavailable(name: str, error: StorageError) -> ResponseReturnValue:
    """The limits' Redis is out of reach: 503 as JSON, as dependencies.dependency() answers."""
    logger.warning("%s unreachable: %s", name, type(error.storage_error).__name__)
    UNAVAILABLE.labels(name).inc()
    return current_app.handle_http_exception(ServiceUnavailable(f"The {name} is unreachable; try again later."))


def _retry_after(limiter: Limiter, error: RateLimitExceeded) -> ResponseReturnValue:
    """The rate's 429, with ``Retry-After``: the seconds left in its window, read now."""
    seconds = math.ceil(limiter.current_limit.window.reset_time - time.time())  # type: ignore[union-attr]
    return current_app.handle_http_exception(TooManyRequests(error.description, retry_after=max(seconds, 1)))


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
    slot = Slot(
        f"started-tasks:{_who()}", task_id, now, forget_before, current_app.config["LIMITS"]["unfinished_tasks"]
    )
    if not started.beside_id_records:
        slot.take(started.add)
    try:
        yield slot if started.beside_id_records else None
    except BaseException:
        started.remove(slot.key, task_id)
        raise


def _who() -> str:
    return current_client() or request.remote_addr or "-"


def _starts_a_task() -> bool:
    """A POST to a task exposed with expose() (task_api.py), whichever it is."""
    view = current_app.view_functions.get(request.endpoint or "")
    return request.method == "POST" and hasattr(view, "task")


@contextmanager
def _storage_errors() -> Iterator[None]:
    """The count's Redis errors raised as Flask-Limiter's storage raises them: the limits' 503, no one else's."""
    try:
        yield
    except redis.RedisError as error:
        raise StorageError(error) from error


class _RedisStarted:
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


class _MemoryStarted:
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
