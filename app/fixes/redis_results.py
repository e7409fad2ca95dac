"""Celery's Redis result backends: no result subscription for every task sent; a finished result is final.

As it sends a task, Celery's Redis backend subscribes the sender to that task's result
channel, in case the sender waits for the result, and unsubscribes when the ``AsyncResult``
is dropped. A web process never waits, so nothing ever reads Redis's replies: they pile up
unread on the process's pub/sub connection until Redis drops the connection for overrunning
its output buffer (celery#4983, celery#6963). Without the subscription, ``AsyncResult.get()`` and
``join()`` still work: they subscribe when they start to wait, then read the stored state.
(Groups and chords sent from here still subscribe for each child: Celery does that itself.)

A task's state only moves forward (app/fixes/final_states.py): a duplicate run, a retry or
a late progress write never replaces a SUCCESS, a FAILURE or a cancel's REVOKED, and a
re-sent message's PENDING never replaces a run's state. Celery reads the record before
each write and skips the write over a SUCCESS only (KeyValueStoreBackend._store_result):
two writers both pass that read. Here each write is one Lua script, with nothing between
its read and its write; Celery's read before it is skipped, so a write is one round trip.

The same backend keeps the run leases of app/runs.py: a key per running task that expires
unless its run renews it.

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

from app.fixes.final_states import FINAL_STATES

# The status of a record (JSON: CELERY_DEFAULTS), or nil; whether a record is final; whether
# a record may be replaced by a new one (final_states.replaces).
STATES = (
    "local function status(record)\n"
    "    if not record then return nil end\n"
    "    local decoded, meta = pcall(cjson.decode, record)\n"
    "    if decoded and type(meta) == 'table' then return meta.status end\n"
    "    return nil\n"
    "end\n"
    "local final = {" + ", ".join(f"{state} = true" for state in sorted(FINAL_STATES)) + "}\n"
    "local function is_final(key) return final[status(redis.call('GET', key))] == true end\n"
    "local function replaces(key, record)\n"
    "    local current = status(redis.call('GET', key))\n"
    "    if current == nil or current == 'PENDING' then return true end\n"
    "    if final[current] then return false end\n"
    "    return status(record) ~= 'PENDING'\n"  # decoded only over a run's state
    "end\n"
)
# Celery's RedisBackend._set (a SETEX, or a SET when results never expire, then a PUBLISH
# to waiters), unless the stored record is to stay.
SET_UNLESS_FINAL = (
    STATES
    + """
if not replaces(KEYS[1], ARGV[1]) then
    return 0
end
if tonumber(ARGV[2]) > 0 then
    redis.call('SETEX', KEYS[1], ARGV[2], ARGV[1])
else
    redis.call('SET', KEYS[1], ARGV[1])
end
redis.call('PUBLISH', KEYS[1], ARGV[1])
return 1
"""
)
# A run's lease (app/runs.py): -1 if the task's record is final, 0 once taken for ARGV[2] ms
# under the run's token ARGV[1], else the milliseconds another run still holds it.
CLAIM_RUN = (
    STATES
    + """
if is_final(KEYS[1]) then
    return -1
end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then
    return 0
end
return math.max(redis.call('PTTL', KEYS[2]), 1)
"""
)
# Renew (ARGV[2] ms) or release (no ARGV[2]) a lease, if the run's token still holds it.
KEEP_OR_END_RUN = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
    return 0
end
if ARGV[2] then
    return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return redis.call('DEL', KEYS[1])
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

    @cached_property
    def _claim_run(self) -> Script:
        script: Script = self.client.register_script(CLAIM_RUN)
        return script

    @cached_property
    def _keep_or_end_run(self) -> Script:
        script: Script = self.client.register_script(KEEP_OR_END_RUN)
        return script

    def claim_run(self, task_id: str, token: str, seconds: float) -> float | None:
        """Take ``task_id``'s run lease for ``seconds``: 0; None if the task finished; else the seconds it is held."""
        keys = [self.get_key_for_task(task_id), self._lease(task_id)]
        held: int = self._claim_run(keys=keys, args=[token, _ms(seconds)])
        return None if held < 0 else held / 1000

    def renew_run(self, task_id: str, token: str, seconds: float) -> bool:
        """Hold the lease ``seconds`` more; False if the run lost it (it expired)."""
        return bool(self._keep_or_end_run(keys=[self._lease(task_id)], args=[token, _ms(seconds)]))

    def release_run(self, task_id: str, token: str) -> None:
        """End the lease, unless it expired and another run holds it now."""
        self._keep_or_end_run(keys=[self._lease(task_id)], args=[token])

    def _lease(self, task_id: str) -> bytes:
        # Beside the task's record, under the backend's own key prefix.
        key: bytes = self.get_key_for_task(task_id, ".run")
        return key

    def _set(self, key: bytes, value: bytes | str, expires: int | None = None) -> None:
        """Store ``value`` under ``key`` and tell waiters, unless the key holds a finished result."""
        seconds = self.expires if expires is None else expires
        self._set_unless_final(keys=[key], args=[value, int(seconds or 0)])


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


class PublisherRedisBackend(_FactoryRedisBackend, RedisBackend):  # type: ignore[misc]
    """Celery's Redis backend that subscribes to a result only when someone waits for it."""


class PublisherSentinelBackend(_FactoryRedisBackend, SentinelBackend):  # type: ignore[misc]
    """The same for Redis behind Sentinel."""
