"""Celery's Redis result backends: no result subscription for every task sent; a finished result is final.

As it sends a task, Celery's Redis backend subscribes the sender to that task's result
channel, in case the sender waits for the result, and unsubscribes when the ``AsyncResult``
is dropped. A web process never waits, so nothing ever reads Redis's replies: they pile up
unread on the process's pub/sub connection until Redis drops the connection for overrunning
its output buffer (celery#4983, celery#6963). Without the subscription, ``AsyncResult.get()`` and
``join()`` still work: they subscribe when they start to wait, then read the stored state.
(Groups and chords sent from here still subscribe for each child: Celery does that itself.)

A finished result is final. A task's message is delivered at least once, and a duplicate
run (a worker cut off mid-task whose message went to another, a redelivery racing the
first run's end) stores its own STARTED, PROGRESS and result. Celery reads the record
before each write and skips the write over a SUCCESS (KeyValueStoreBackend._store_result):
two runs ending together both pass that read, and a FAILURE is overwritten. Here each
write is one Lua script, which leaves a SUCCESS or a FAILURE alone, with nothing between
its read and its write; Celery's read before it is skipped, so a write is one round trip.

CELERY_DEFAULTS selects these classes for ``redis://``, ``rediss://`` and ``sentinel://``.
Both faults, measured and reproduced, the proposed Celery changes and the upstream issues:
docs/upstream.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from typing import Any

from celery import states
from celery.backends.redis import RedisBackend, SentinelBackend
from celery.exceptions import BackendStoreError
from kombu.utils.encoding import bytes_to_str
from redis.commands.core import Script

# Celery's RedisBackend._set (a SETEX, or a SET when results never expire, then a PUBLISH
# to waiters), unless the record already holds a final state. Records are JSON
# (CELERY_DEFAULTS); one that is not is overwritten as before.
SET_UNLESS_FINAL = """
local current = redis.call('GET', KEYS[1])
if current then
    local decoded, record = pcall(cjson.decode, current)
    if decoded and type(record) == 'table' and (record.status == 'SUCCESS' or record.status == 'FAILURE') then
        return 0
    end
end
if tonumber(ARGV[2]) > 0 then
    redis.call('SETEX', KEYS[1], ARGV[2], ARGV[1])
else
    redis.call('SET', KEYS[1], ARGV[1])
end
redis.call('PUBLISH', KEYS[1], ARGV[1])
return 1
"""


class _FactoryRedisBackend:
    client: Any
    expires: Any
    failure_expires: Any
    _get_result_meta: Any
    encode: Any
    get_key_for_task: Any
    set: Any

    def on_task_call(self, producer: Any, task_id: str) -> dict[str, Any]:
        """Send the task without subscribing to its result channel, and add no message options."""
        return {}  # as Celery's base backend: callers may splat it into the task's options

    def _store_result(
        self,
        task_id: str,
        result: Any,
        state: str,
        traceback: str | None = None,
        request: Any = None,
        retry_policy: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> Any:
        """Celery's KeyValueStoreBackend._store_result in one round trip: the write, not a read first.

        ``retry_policy`` bounds this write's retries (Celery's default: 20, about a minute
        against a stalled Redis), for a caller that must answer in time.
        """
        meta = self._get_result_meta(result=result, state=state, traceback=traceback, request=request)
        meta["task_id"] = bytes_to_str(task_id)  # type: ignore[no-untyped-call]
        expires = self.failure_expires if state == states.FAILURE else None
        try:
            self.set(self.get_key_for_task(task_id), self.encode(meta), expires, **(retry_policy or {}))
        except BackendStoreError as error:
            raise BackendStoreError(str(error), state=state, task_id=task_id) from error
        return result

    @cached_property
    def _set_unless_final(self) -> Script:
        # Sent by its SHA1 (EVALSHA), loaded once per Redis: not the script's text with every write.
        script: Script = self.client.register_script(SET_UNLESS_FINAL)
        return script

    def _set(self, key: bytes, value: bytes | str, expires: int | None = None) -> None:
        """Store ``value`` under ``key`` and tell waiters, unless the key holds a finished result."""
        seconds = self.expires if expires is None else expires
        self._set_unless_final(keys=[key], args=[value, int(seconds or 0)])


class PublisherRedisBackend(_FactoryRedisBackend, RedisBackend):  # type: ignore[misc]
    """Celery's Redis backend that subscribes to a result only when someone waits for it."""


class PublisherSentinelBackend(_FactoryRedisBackend, SentinelBackend):  # type: ignore[misc]
    """The same for Redis behind Sentinel."""
