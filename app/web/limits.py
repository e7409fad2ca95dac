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
from collections.abc import Iterator
from contextlib import contextmanager

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
# A start added, those before ARGV[3] forgotten, how many are kept: one Redis call (EVALSHA), not a MULTI of three.
ADD = "redis.call('ZADD',KEYS[1],ARGV[2],ARGV[1]) redis.call('ZREMRANGEBYSCORE',KEYS[1],0,ARGV[3])"
ADD += " return redis.call('ZCARD',KEYS[1])"


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
    app.extensions["started_tasks"] = _RedisStarted(url, timeouts) if url.startswith("redis") else _MemoryStarted()
    # Named as the client knows it: by default the limits count in the result backend's Redis.
    name = "result backend" if url == app.config["CELERY"]["result_backend"] else "limits storage"
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


@contextmanager
def unfinished_slot(celery_app: Celery, task_id: str) -> Iterator[None]:
    """Count the task among its client's unfinished ones inside, or 429 at the cap; uncounted if the body fails."""
    started, key = current_app.extensions["started_tasks"], f"started-tasks:{_who()}"
    cap: int = current_app.config["LIMITS"]["unfinished_tasks"]
    # Kept as long as results are (result_expires; when those never expire, forever).
    now = time.time()
    if started.add(key, task_id, now, now - (celery_app.backend.prepare_expires(None, float) or now)) > cap:
        ids = started.members(key)
        ended = [i for i in ids if i != task_id and celery_app.backend.get_state(i) in states.READY_STATES]
        over = len(ids) - len(ended) > cap
        started.remove(key, *ended, *([task_id] if over else []))
        if over:
            raise TooManyRequests(f"At most {cap} tasks of a client may be queued or running; try again once one ends.")
    try:
        yield
    except BaseException:
        started.remove(key, task_id)
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

    def __init__(self, url: str, timeouts: dict[str, str | int]) -> None:
        self._client = redis.Redis.from_url(url, decode_responses=True, **timeouts)
        self._add = self._client.register_script(ADD)

    @_storage_errors()
    def add(self, key: str, task_id: str, now: float, forget_before: float) -> int:
        """Add the task, forget those started before ``forget_before``; answer how many are kept."""
        return int(self._add(keys=[key], args=[task_id, now, forget_before]))

    @_storage_errors()
    def members(self, key: str) -> list[str]:
        return [str(task_id) for task_id in self._client.zrange(key, 0, -1)]

    @_storage_errors()
    def remove(self, key: str, *task_ids: str) -> None:
        self._client.zrem(key, *task_ids)


class _MemoryStarted:
    """The same in this process's memory."""

    def __init__(self) -> None:
        self._keys: dict[str, dict[str, float]] = {}
        self._lock = threading.Lock()

    def add(self, key: str, task_id: str, now: float, forget_before: float) -> int:
        with self._lock:
            ids = self._keys.setdefault(key, {})
            ids[task_id] = now
            for old in [i for i, at in ids.items() if at <= forget_before]:
                del ids[old]
            return len(ids)

    def members(self, key: str) -> list[str]:
        with self._lock:
            return list(self._keys[key])

    def remove(self, key: str, *task_ids: str) -> None:
        with self._lock:
            for task_id in task_ids:
                self._keys[key].pop(task_id, None)
