"""Celery's Redis result backends: no result subscription for every task sent; a task's state only moves forward.

Each write is one Lua script that checks the stored state (final_states.py) and writes, in
one round trip; app/tasking/runs.py's run lease uses these backends and STATES. CELERY_DEFAULTS
selects these classes for ``redis://``, ``rediss://`` and ``sentinel://``. Delete each part
once Celery subscribes only when a caller waits, and keeps a FAILURE and a REVOKED as it keeps
a SUCCESS, in one step (the template's docs/upstream.md, "the Redis result backend subscribes", "a later write").
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

from celery import states
from celery.backends.redis import RedisBackend, SentinelBackend
from celery.exceptions import BackendStoreError
from kombu.utils.encoding import bytes_to_str
from redis.commands.core import Script

from app.fixes.final_states import FINAL_STATES
from app.fixes.redis_waits import RereadingResultConsumer

# Lua: the status of a record (JSON), or nil; the final states; whether a key's record may be replaced.
STATES = (
    "local function status(record)\n"
    "    if not record then return nil end\n"
    "    local decoded, meta = pcall(cjson.decode, record)\n"
    "    if decoded and type(meta) == 'table' then return meta.status end\n"
    "    return nil\n"
    "end\n"
    "local final = {" + ", ".join(f"{state} = true" for state in sorted(FINAL_STATES)) + "}\n"
    "local function replaces(key, record)\n"
    "    local current = status(redis.call('GET', key))\n"
    "    if current == nil or current == 'PENDING' then return true end\n"
    "    if final[current] then return false end\n"
    "    return status(record) ~= 'PENDING'\n"  # decoded only over a run's state
    "end\n"
)
SCRIPTS = {
    # Celery's RedisBackend._set (SETEX, or SET when results never expire, then PUBLISH), unless the record stays,
    # for KEYS[1..n] (n: ARGV[1]; ARGV[2]: seconds; ARGV[3..]: their records), as a task's owner beside its id.
    # With a set KEYS[n+1] (a client's started tasks), the task id ARGV[n+3] is added to it first at ARGV[n+4],
    # those up to ARGV[n+5] forgotten; past ARGV[n+6] (its cap) it is taken out and nothing is written.
    # Answers how many the set keeps (0 without one; -1 if the record stays).
    "set_unless_final": STATES
    + """
local n = tonumber(ARGV[1])
if not replaces(KEYS[1], ARGV[3]) then return -1 end
local kept = 0
if KEYS[n + 1] then
    redis.call('ZADD', KEYS[n + 1], ARGV[n + 4], ARGV[n + 3])
    redis.call('ZREMRANGEBYSCORE', KEYS[n + 1], 0, ARGV[n + 5])
    kept = redis.call('ZCARD', KEYS[n + 1])
    if kept > tonumber(ARGV[n + 6]) then
        redis.call('ZREM', KEYS[n + 1], ARGV[n + 3])
        return kept
    end
end
for i = 1, n do
    if tonumber(ARGV[2]) > 0 then redis.call('SETEX', KEYS[i], ARGV[2], ARGV[i + 2])
    else redis.call('SET', KEYS[i], ARGV[i + 2]) end
end
redis.call('PUBLISH', KEYS[1], ARGV[3])
return kept
""",
}


class PublisherRedisBackend(RedisBackend):  # type: ignore[misc]
    """Celery's Redis backend that subscribes to a result only when someone waits for it."""

    ResultConsumer = RereadingResultConsumer  # get() then reads the stored state again while it waits

    def on_task_call(self, producer: Any, task_id: str) -> dict[str, Any]:
        """Send the task without subscribing to its result channel (get() and join() subscribe as they wait)."""
        return {}  # as Celery's base backend: callers may splat it into the task's options

    def _store_result(
        self, task_id: str, result: Any, state: str, traceback: Any = None, request: Any = None, **kwargs: Any
    ) -> Any:
        """Celery's KeyValueStoreBackend._store_result without its read first; ``retry_policy`` bounds the retries."""
        value = self._record(task_id, result, state, traceback, request)
        expires = self.failure_expires if state == states.FAILURE else None
        self.ensure(self._set, (self.get_key_for_task(task_id), value, expires), **(kwargs.get("retry_policy") or {}))
        return result

    def record_sent(self, task_id: str, beside: dict[str, str], slot: Any = None) -> int:
        """Store a task sent as PENDING, with records ``beside`` it (id -> result, stored SUCCESS), in one call.

        With a ``slot`` (app/web/unfinished_tasks.py: a client's started tasks, ``key``, at ``now``, those up
        to ``forget_before`` forgotten, at most ``cap``) the task counts there in the same call:
        how many are kept, or, past the cap, that many and the task uncounted, nothing written.
        """
        records = {task_id: self._record(task_id, None, states.PENDING)}
        records |= {
            other: self.encode({"status": states.SUCCESS, "result": record, "task_id": other})
            for other, record in beside.items()
        }
        keys = [self.get_key_for_task(other) for other in records]
        args = [len(records), int(self.expires or 0), *records.values()]
        if slot is not None:
            keys.append(slot.key)
            args += [task_id, slot.now, slot.forget_before, slot.cap]
        return int(self._scripts["set_unless_final"](keys=keys, args=args))

    def _record(self, task_id: str, result: Any, state: str, traceback: Any = None, request: Any = None) -> Any:
        """A task's record as Celery's Redis backend stores it, refused if too large as Celery's set() refuses it."""
        meta = self._get_result_meta(result=result, state=state, traceback=traceback, request=request)
        meta["task_id"] = bytes_to_str(task_id)  # type: ignore[no-untyped-call]
        value = self.encode(meta)
        if isinstance(value, str) and len(value) > self._MAX_STR_VALUE_SIZE:
            raise BackendStoreError("value too large for Redis backend", state=state, task_id=task_id)
        return value

    @cached_property
    def _scripts(self) -> dict[str, Script]:
        # Sent by their SHA1 (EVALSHA), loaded once per Redis: not each script's text with every call.
        return {name: self.client.register_script(script) for name, script in SCRIPTS.items()}

    def _set(self, key: bytes, value: bytes | str, expires: int | None = None) -> None:
        """Store ``value`` under ``key`` and tell waiters, unless the key holds a record that is to stay."""
        seconds = self.expires if expires is None else expires
        self._scripts["set_unless_final"](keys=[key], args=[1, int(seconds or 0), value])


class PublisherSentinelBackend(PublisherRedisBackend, SentinelBackend):  # type: ignore[misc]
    """The same for Redis behind Sentinel."""
