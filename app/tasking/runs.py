"""A task runs once: not after it has finished or been cancelled, and never twice at a time.

Messages come at least once (late acks, a client's retry after a 503). Before a run, in the
process that runs it (not the consumer's event loop, which must not wait on the backend): a
stored final state drops the message; on Redis the run takes a lease that expires unless
renewed, and a duplicate is sent again for when the lease would lapse (a dead run's does).
With the result backend out of reach the task runs, as with plain Celery (the template's docs/reliability.md).
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from celery import Task, states
from celery.exceptions import Ignore

from app.fixes.redis_results import STATES, PublisherRedisBackend
from app.tasking import backend_errors

# A lease outlives its run's last renewal by this long: the time a dead run's task waits.
LEASE_SECONDS = 10.0
RENEW_EVERY_SECONDS = LEASE_SECONDS / 4
# The run's own writes do not wait out Celery's retries of a backend that is away.
NO_RETRY = {"max_retries": 0}
# Lua: -1 if the task's record (KEYS[1]) is final, 0 once its lease KEYS[2] is taken for ARGV[2] ms
# under the run's token ARGV[1], else the milliseconds another run still holds it.
CLAIM = f"""{STATES}
if final[status(redis.call('GET', KEYS[1]))] then return -1 end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return 0 end
return math.max(redis.call('PTTL', KEYS[2]), 1)
"""
# Renew (ARGV[2] ms) or release (no ARGV[2]) a lease, if the run's token still holds it.
KEEP_OR_END = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[2] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return redis.call('DEL', KEYS[1])
"""

logger = logging.getLogger(__name__)


@contextmanager
def only_run(task: Task) -> Iterator[None]:
    """Run the body as the task's only run, or raise Ignore (the message is acknowledged, nothing stored)."""
    if task.request.called_directly or task.request.is_eager:  # no message: nothing was delivered twice
        yield
        return
    lease = None
    try:
        lease = _claim(task)
    except backend_errors(task.backend) as error:
        logger.warning("result backend unreachable (%s): run without looking for another run", error)
    if task.app.conf.task_track_started and not task.ignore_result:
        started(task)
    try:
        yield
    finally:
        if lease is not None:
            lease.end()


def started(task: Task) -> None:
    """Store STARTED, as Celery's task_track_started would before the run guard: best effort."""
    request = task.request
    try:
        meta = {"pid": os.getpid(), "hostname": request.hostname}
        task.backend.store_result(request.id, meta, states.STARTED, request=request, retry_policy=NO_RETRY)
    except backend_errors(task.backend) as error:
        logger.warning("result backend unreachable (%s): STARTED not recorded", error)


def _claim(task: Task) -> _Lease | None:
    """The run's lease (None where the backend keeps none); Ignore if the task finished or runs elsewhere."""
    backend, task_id = task.backend, task.request.id
    # Kept on the factory's Redis backends (on Celery's once app/fixes/redis_results.py goes: the import fails then).
    if not isinstance(backend, PublisherRedisBackend):
        if backend.get_state(task_id) in states.READY_STATES:
            _drop(task)
        return None
    lease = _Lease(backend, task_id)
    held = lease.claim()
    if held is None:
        _drop(task)
    if held:
        # Sent again, as it was (its id, arguments, headers and route), for when the lease would lapse.
        task.signature_from_request(countdown=held).apply_async()
        logger.info("%s[%s] is running elsewhere: message sent again for %.1f s from now", task.name, task_id, held)
        raise Ignore()
    return lease


def _drop(task: Task) -> None:
    logger.info("%s[%s] has already finished: message dropped", task.name, task.request.id)
    raise Ignore()


class _Lease:
    """A run's lease on its task id (a key beside its record), renewed by a thread of its own while the run goes on."""

    def __init__(self, backend: Any, task_id: str) -> None:
        self.backend, self.task_id, self.token = backend, task_id, uuid.uuid4().hex
        self.key: bytes = backend.get_key_for_task(task_id, ".run")  # under the backend's key prefix
        self._ended = threading.Event()
        self._renewer = threading.Thread(target=self._renew, name=f"lease {task_id}", daemon=True)

    def claim(self) -> float | None:
        """Take it for LEASE_SECONDS, renewed until end(): 0; None if the task finished; else the seconds it is held."""
        held = self._run(CLAIM, [self.backend.get_key_for_task(self.task_id), self.key], LEASE_SECONDS)
        if held == 0:
            self._renewer.start()
        return None if held < 0 else held / 1000

    def _renew(self) -> None:
        while not self._ended.wait(RENEW_EVERY_SECONDS):
            try:
                if not self._run(KEEP_OR_END, [self.key], LEASE_SECONDS):
                    logger.warning("the run lease of %s lapsed: another run may start", self.task_id)
            except backend_errors(self.backend) as error:
                logger.warning("result backend unreachable (%s): run lease not renewed", error)

    def end(self) -> None:
        self._ended.set()
        self._renewer.join()
        try:
            self._run(KEEP_OR_END, [self.key])  # unless it lapsed and another run holds it now
        except backend_errors(self.backend) as error:  # it lapses by itself
            logger.warning("result backend unreachable (%s): run lease left to lapse", error)

    def _run(self, script: str, keys: list[bytes], *seconds: float) -> int:
        # Sent by its SHA1 (EVALSHA): redis-py sends the text only when Redis answers NOSCRIPT. Times
        # go in whole milliseconds, at least one (PX 0 Redis refuses).
        milliseconds = [max(1, round(each * 1000)) for each in seconds]
        return int(self.backend.client.register_script(script)(keys=keys, args=[self.token, *milliseconds]))
