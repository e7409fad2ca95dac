"""The factory's Redis result backend keeps a finished result (app/fixes/redis_results.py), its Lua on fakeredis."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from types import SimpleNamespace
from typing import Any

import fakeredis
import pytest
from celery import states
from celery.backends.base import KeyValueStoreBackend
from celery.exceptions import BackendStoreError
from flask import Flask
from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from app import create_app
from app.web.auth import owner_record
from tests.unit.conftest import IN_MEMORY_CONFIG, TOKENS, TokenClient, WriteConfig

NOT_FINAL = [states.PENDING, states.STARTED, "PROGRESS", states.RETRY]


@pytest.fixture
def redis() -> Redis:
    """A FakeRedis that runs Lua scripts (fakeredis with lupa)."""
    return fakeredis.FakeRedis()


def app_on(redis: Redis, write_config: WriteConfig, tokens: object = None, **celery: object) -> Flask:
    write_config({**IN_MEMORY_CONFIG, "celery": {**IN_MEMORY_CONFIG["celery"], "result_backend": "redis://", **celery}})
    app = create_app({"AUTH_TOKENS": tokens})  # None: without authentication
    app.extensions["celery"].backend.client = redis
    return app


def backend_on(redis: Redis, write_config: WriteConfig, **celery: object) -> KeyValueStoreBackend:
    backend: KeyValueStoreBackend = app_on(redis, write_config, **celery).extensions["celery"].backend
    return backend


def recording(redis: Redis, monkeypatch: pytest.MonkeyPatch, failing: int = 0) -> list[str]:
    """The names of the commands the backend sends from now on; the first `failing` fail as with Redis away."""
    sent: list[str] = []
    send = redis.execute_command

    def execute_command(*args: Any, **options: Any) -> Any:
        sent.append(str(args[0]).upper())
        if len(sent) <= failing:
            raise RedisConnectionError("Redis is away")
        return send(*args, **options)

    monkeypatch.setattr(redis, "execute_command", execute_command)
    return sent


def test_get_reads_a_task_in_one_round_trip(
    redis: Redis, write_config: WriteConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GET /task/<id>: one GET of the record says both whether it was submitted and its state; unknown: 404."""
    client = app_on(redis, write_config).test_client()
    task_id = str(uuid.uuid4())
    client.application.extensions["celery"].backend.store_result(task_id, None, states.PENDING)
    sent = recording(redis, monkeypatch)
    assert client.get(f"/task/{task_id}").json["state"] == states.PENDING
    assert client.get(f"/task/{uuid.uuid4()}").status_code == 404
    assert Counter(sent) == {"GET": 2}


@pytest.mark.parametrize("final", sorted(states.READY_STATES), ids=str.lower)
def test_a_finished_result_is_never_overwritten(redis: Redis, write_config: WriteConfig, final: str) -> None:
    """A duplicate run's STARTED, PROGRESS and own result leave a SUCCESS, a FAILURE or a cancel's REVOKED as it was."""
    backend = backend_on(redis, write_config)
    first = "first run" if final == states.SUCCESS else ValueError("first run")
    backend.store_result("task-1", first, final)
    stored = redis.get(backend.get_key_for_task("task-1"))
    for state, result in [(states.STARTED, None), ("PROGRESS", {"progress": 0.5}), (states.SUCCESS, "second run")]:
        backend.store_result("task-1", result, state)
    assert redis.get(backend.get_key_for_task("task-1")) == stored
    assert backend.get_task_meta("task-1")["status"] == final


@pytest.mark.parametrize("tokens", [None, TOKENS["AUTH_TOKENS"]], ids=["anonymous", "client"])
def test_post_records_the_id_in_one_round_trip(
    redis: Redis, write_config: WriteConfig, monkeypatch: pytest.MonkeyPatch, tokens: dict[str, bytes] | None
) -> None:
    """POST /task/: the PENDING record, and its owner's beside it, are one write (the Lua script, by its SHA1)."""
    app = app_on(redis, write_config, tokens)
    app.test_client_class = TokenClient
    client = app.test_client()
    assert client.post("/task/").status_code == 202  # the first write loads the script
    sent = recording(redis, monkeypatch)
    task_id = client.post("/task/").json["task_id"]
    assert Counter(sent) == {"EVALSHA": 1}
    assert client.get(f"/task/{task_id}").json["state"] == states.PENDING  # its owner's: a client's own task
    assert redis.exists(app.extensions["celery"].backend.get_key_for_task(owner_record(task_id))) == bool(tokens)


def test_records_beside_take_the_records_expiry_and_stay_out_beside_one_that_stays(
    redis: Redis, write_config: WriteConfig
) -> None:
    """Each record beside is stored as SUCCESS and expires with the record; beside a final record nothing is written."""
    backend = backend_on(redis, write_config, result_expires=60)
    backend.record_sent("task-1", {"task-1.owner": "billing"})
    assert json.loads(redis.get(backend.get_key_for_task("task-1.owner"))) == {
        "status": states.SUCCESS,
        "result": "billing",
        "task_id": "task-1.owner",
    }
    assert redis.pttl(backend.get_key_for_task("task-1.owner")) in range(59_000, 60_001)
    backend.store_result("task-2", "done", states.SUCCESS)
    assert backend.record_sent("task-2", {"task-2.owner": "billing"}) == -1
    assert (backend.get_task_meta("task-2")["status"], redis.exists(backend.get_key_for_task("task-2.owner"))) == (
        states.SUCCESS,
        0,
    )


def test_a_start_counted_beside_its_record_is_written_only_within_its_cap(
    redis: Redis, write_config: WriteConfig
) -> None:
    """With a slot the id joins its client's started tasks in one call: kept and recorded, or past the cap neither."""
    backend = backend_on(redis, write_config)
    slot = SimpleNamespace(key="started-tasks:billing", now=10.0, forget_before=5.0, cap=2)
    redis.zadd(slot.key, {"old": 5.0, "running": 8.0})  # "old" started at forget_before: forgotten
    assert backend.record_sent("task-1", {}, slot) == 2
    assert backend.get_task_meta("task-1")["status"] == states.PENDING
    assert backend.record_sent("task-2", {"task-2.owner": "billing"}, slot) == 3
    assert redis.zrange(slot.key, 0, -1) == [b"running", b"task-1"]
    assert not redis.exists(backend.get_key_for_task("task-2"), backend.get_key_for_task("task-2.owner"))


def test_the_script_is_loaded_again_when_redis_forgot_it(
    redis: Redis, write_config: WriteConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Redis restarted (its scripts gone): the write loads the script again and is stored."""
    backend = backend_on(redis, write_config)
    backend.store_result("task-1", None, states.PENDING)
    redis.script_flush()
    sent = recording(redis, monkeypatch)
    backend.store_result("task-1", "done", states.SUCCESS)
    assert Counter(sent) == {"EVALSHA": 2, "SCRIPT LOAD": 1}
    assert backend.get_task_meta("task-1")["result"] == "done"


def test_the_id_record_is_not_retried_so_post_answers_in_time(
    redis: Redis, write_config: WriteConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failed id record write is not retried (Celery's would, for a minute): 503 at once."""
    client = app_on(redis, write_config).test_client()
    assert client.post("/task/").status_code == 202  # the first write loads the script
    sent = recording(redis, monkeypatch, failing=1)
    response = client.post("/task/")
    assert (response.status_code, sent) == (503, ["EVALSHA"])


def test_a_workers_write_is_retried(redis: Redis, write_config: WriteConfig, monkeypatch: pytest.MonkeyPatch) -> None:
    """A task's state written by a worker is retried as Celery's Redis backend retries (the result is not lost)."""
    backend = backend_on(redis, write_config)
    backend.store_result("task-1", None, states.STARTED)  # the first write loads the script
    sent = recording(redis, monkeypatch, failing=1)
    backend.store_result("task-1", "done", states.SUCCESS)
    assert sent == ["EVALSHA", "EVALSHA"]
    assert backend.get_task_meta("task-1")["result"] == "done"


@pytest.mark.parametrize("earlier", NOT_FINAL, ids=str.lower)
def test_a_record_not_yet_final_is_replaced_and_waiters_told(
    redis: Redis, write_config: WriteConfig, earlier: str
) -> None:
    """PENDING, STARTED, PROGRESS and RETRY give way to the next state, published to whoever waits."""
    backend = backend_on(redis, write_config)
    backend.store_result("task-1", None, earlier)
    waiter = redis.pubsub()
    waiter.subscribe(backend.get_key_for_task("task-1"))
    assert waiter.get_message(timeout=1)["type"] == "subscribe"
    backend.store_result("task-1", "done", states.SUCCESS)
    assert backend.get_task_meta("task-1")["result"] == "done"
    message = waiter.get_message(timeout=1)
    assert message is not None and b'"status": "SUCCESS"' in message["data"]


@pytest.mark.parametrize("sent", [False, True], ids=["a-state", "a-task-sent"])
@pytest.mark.parametrize(
    ("result_expires", "milliseconds"), [(60, range(59_000, 60_001)), (0, [-1])], ids=["expire", "kept-for-ever"]
)
def test_records_expire_as_result_expires_says(
    redis: Redis, write_config: WriteConfig, result_expires: int, milliseconds: range | list[int], sent: bool
) -> None:
    """The record's time to live is `result_expires` (none at all when it is 0), as with Celery's own backend.

    So for a state stored and for the records of a task sent (record_sent(): its own and its owner's).
    """
    backend = backend_on(redis, write_config, result_expires=result_expires)
    if sent:
        backend.record_sent("task-1", {"task-1.owner": "billing"})
    else:
        backend.store_result("task-1", "done", states.SUCCESS)
    records = ["task-1", "task-1.owner"] if sent else ["task-1"]
    assert all(redis.pttl(backend.get_key_for_task(record)) in milliseconds for record in records)


def test_a_task_sent_is_recorded_pending_under_its_own_id(redis: Redis, write_config: WriteConfig) -> None:
    """record_sent() stores Celery's PENDING record, its task_id the task's; without a slot it answers 0 (none kept)."""
    backend = backend_on(redis, write_config)
    assert backend.record_sent("task-1", {}) == 0
    record = json.loads(redis.get(backend.get_key_for_task("task-1")))
    assert (record["status"], record["task_id"]) == (states.PENDING, "task-1")


def test_a_failure_expires_as_result_failure_expires_says(redis: Redis, write_config: WriteConfig) -> None:
    """A FAILURE keeps `result_failure_expires` (Celery passes it on), not `result_expires`; other states do not."""
    backend = backend_on(redis, write_config, result_expires=60, result_failure_expires=30)
    backend.store_result("task-1", ValueError("failed"), states.FAILURE)
    backend.store_result("task-2", "done", states.SUCCESS)
    assert redis.pttl(backend.get_key_for_task("task-1")) in range(29_000, 30_001)
    assert redis.pttl(backend.get_key_for_task("task-2")) in range(59_000, 60_001)


def test_a_record_holds_what_celerys_own_write_holds(redis: Redis, write_config: WriteConfig) -> None:
    """The one-round-trip write stores Celery's record: its task id, the traceback, the request's name (extended)."""
    backend = backend_on(redis, write_config)
    request = SimpleNamespace(task="tasks.example", args=[1], kwargs={}, hostname="w", retries=2, delivery_info={})
    backend.store_result(b"task-1", ValueError("failed"), states.FAILURE, traceback="Traceback ...", request=request)
    record = json.loads(redis.get(backend.get_key_for_task("task-1")))
    assert (record["task_id"], record["traceback"], record["name"], record["retries"]) == (
        "task-1",
        "Traceback ...",
        "tasks.example",
        2,
    )


def test_a_value_that_is_not_json_is_overwritten(redis: Redis, write_config: WriteConfig) -> None:
    """Records of another serializer (the file may choose one) are written as Celery writes them, unguarded."""
    backend = backend_on(redis, write_config)
    backend.set(b"key", b"\x80 not json")
    backend.set(b"key", b"\x81 not json either")
    assert redis.get(b"key") == b"\x81 not json either"


def test_a_record_too_large_for_redis_names_its_task_and_state(
    redis: Redis, write_config: WriteConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A record over Redis's size limit fails as Celery's own backend fails: BackendStoreError with task and state."""
    backend = backend_on(redis, write_config)
    monkeypatch.setattr(backend, "_MAX_STR_VALUE_SIZE", 100)
    with pytest.raises(BackendStoreError) as raised:
        backend.store_result("task-1", "x" * 200, states.SUCCESS)
    assert (raised.value.task_id, raised.value.state) == ("task-1", states.SUCCESS)
    assert str(raised.value) == "value too large for Redis backend"
    assert redis.get(backend.get_key_for_task("task-1")) is None


def test_a_record_as_long_as_redis_takes_is_stored(
    redis: Redis, write_config: WriteConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As Celery's own backend: a record exactly at the size limit is stored, one character longer refused."""
    backend = backend_on(redis, write_config)
    backend.store_result("task-1", "x", "PROGRESS")  # no date_done: every such record has the same length
    size = len(redis.get(backend.get_key_for_task("task-1")))
    monkeypatch.setattr(backend, "_MAX_STR_VALUE_SIZE", size)
    backend.store_result("task-2", "x", "PROGRESS")
    assert len(redis.get(backend.get_key_for_task("task-2"))) == size
    monkeypatch.setattr(backend, "_MAX_STR_VALUE_SIZE", size - 1)
    with pytest.raises(BackendStoreError):
        backend.store_result("task-3", "x", "PROGRESS")
