"""A task runs once (app/tasking/runs.py): not after it finished, nor beside another run; traced as workers do."""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import fakeredis
import pytest
from celery import Celery, states
from celery.app.trace import trace_task
from flask import Flask
from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from app import create_app
from app.tasking import runs
from tests.tasks import RUNS, counted_task
from tests.unit.conftest import IN_MEMORY_CONFIG, WriteConfig

IGNORED = "IGNORED"


@pytest.fixture
def redis() -> Redis:
    """A FakeRedis that runs Lua scripts (fakeredis with lupa)."""
    return fakeredis.FakeRedis()


@pytest.fixture(params=["redis", "cache"])
def app(request: pytest.FixtureRequest, redis: Redis, write_config: WriteConfig) -> Flask:
    """An app whose tasks are published (not eager), on the factory's Redis backend or the in-memory cache."""
    backend = "redis://" if request.param == "redis" else IN_MEMORY_CONFIG["celery"]["result_backend"]
    write_config({**IN_MEMORY_CONFIG, "celery": {**IN_MEMORY_CONFIG["celery"], "result_backend": backend}})
    app = create_app()
    if request.param == "redis":
        app.extensions["celery"].backend.client = redis
    return app


@pytest.fixture
def redis_app(redis: Redis, write_config: WriteConfig) -> Flask:
    """An app on the factory's Redis backend (which keeps run leases), its Redis a FakeRedis."""
    return app_on(redis, write_config, "redis://")


def app_on(redis: Redis, write_config: WriteConfig, result_backend: str) -> Flask:
    """An app whose result backend (one of the factory's Redis backends) talks to ``redis``."""
    write_config({**IN_MEMORY_CONFIG, "celery": {**IN_MEMORY_CONFIG["celery"], "result_backend": result_backend}})
    app = create_app()
    app.extensions["celery"].backend.client = redis
    return app


def sending(redis: Redis, monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    """The commands sent to ``redis`` from now on, each with its arguments."""
    sent: list[tuple[Any, ...]] = []
    send = redis.execute_command
    monkeypatch.setattr(redis, "execute_command", lambda *args, **options: sent.append(args) or send(*args, **options))
    return sent


def sha1(script: str) -> str:
    """The SHA1 Redis knows ``script`` by (EVALSHA)."""
    return hashlib.sha1(script.encode()).hexdigest()


def run(app: Flask, task_id: str, key: str | None = None) -> str:
    """Run `counted_task` from a delivered message, as a worker's pool does; the state the run ended in."""
    celery_app: Celery = app.extensions["celery"]
    task = celery_app.tasks[counted_task.name]
    request = {"id": task_id, "task": task.name, "hostname": "worker@test", "delivery_info": {"routing_key": "celery"}}
    info = trace_task(task, task_id, [key or task_id], {}, request=request, app=celery_app)[1]
    return info.state if info is not None else states.SUCCESS


@pytest.mark.parametrize("final", sorted(states.READY_STATES), ids=str.lower)
def test_a_message_of_a_finished_task_is_dropped_without_running(
    app: Flask, final: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Stored SUCCESS, FAILURE or REVOKED: the task does not run, its record stays, the worker says so."""
    caplog.set_level(logging.INFO, logger="app.tasking.runs")
    task_id = str(uuid.uuid4())
    backend = app.extensions["celery"].backend
    backend.store_result(task_id, "first run" if final == states.SUCCESS else ValueError("first run"), final)
    record = backend.get_key_for_task(task_id)
    stored = backend.get(record)
    assert run(app, task_id) == IGNORED
    assert (RUNS[task_id], backend.get(record)) == (0, stored)
    assert f"{counted_task.name}[{task_id}] has already finished: message dropped" in caplog.messages


@pytest.mark.parametrize(
    "earlier", [None, states.PENDING, states.STARTED, states.RETRY, "PROGRESS"], ids=lambda state: str(state)
)
def test_a_message_of_an_unfinished_task_runs(app: Flask, earlier: str | None) -> None:
    """Never stored, queued, started, waiting for a retry or reporting progress: the task runs and succeeds."""
    task_id = str(uuid.uuid4())
    if earlier is not None:
        app.extensions["celery"].backend.store_result(task_id, None, earlier)
    assert run(app, task_id) == states.SUCCESS
    assert (RUNS[task_id], app.extensions["celery"].AsyncResult(task_id).result) == (1, 1)


def test_started_is_stored_once_the_run_goes_ahead(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    """task_track_started: the running task's record says STARTED, with the worker's process and host."""
    task_id = str(uuid.uuid4())
    seen: dict[str, Any] = {}

    def count(key: str) -> int:
        seen.update(app.extensions["celery"].backend.get_task_meta(task_id))
        return 1

    monkeypatch.setattr(counted_task, "run", count)
    run(app, task_id)
    assert (seen["status"], seen["result"]["hostname"], seen["result"]["pid"] > 0) == ("STARTED", "worker@test", True)
    assert seen["name"] == counted_task.name  # the request's (result_extended), as Celery's own STARTED


@pytest.mark.parametrize("setting", ["track-started-off", "ignore-result"])
def test_started_is_not_stored_where_nothing_asks_for_it(
    app: Flask, monkeypatch: pytest.MonkeyPatch, setting: str
) -> None:
    """task_track_started off, or a task that keeps no result: no STARTED write."""
    celery_app = app.extensions["celery"]
    if setting == "track-started-off":
        celery_app.conf.task_track_started = False
    else:
        monkeypatch.setattr(celery_app.tasks[counted_task.name], "ignore_result", True)
    writes: list[str] = []
    store = celery_app.backend.store_result
    monkeypatch.setattr(celery_app.backend, "store_result", lambda *a, **k: writes.append(a[2]) or store(*a, **k))
    run(app, str(uuid.uuid4()))
    assert states.STARTED not in writes


def test_a_task_called_directly_reads_no_backend(redis_app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    """Called as a function (no message, no id): it just runs."""
    monkeypatch.setattr(runs._Lease, "claim", lambda lease: pytest.fail("the result backend was read"))
    with redis_app.app_context():
        assert counted_task(key := str(uuid.uuid4())) == 1
    assert RUNS[key] == 1


@pytest.mark.parametrize("result_backend", ["redis://", "sentinel://127.0.0.1:1/0"], ids=["redis", "sentinel"])
def test_a_run_holds_a_lease_that_expires_and_ends_it_when_done(
    redis: Redis, write_config: WriteConfig, result_backend: str
) -> None:
    """On Redis (behind Sentinel too) a run holds its task id's lease, expiring within LEASE_SECONDS, until it ends."""
    redis_app = app_on(redis, write_config, result_backend)
    task_id = str(uuid.uuid4())
    lease = redis_app.extensions["celery"].backend.get_key_for_task(task_id, ".run")
    seen: list[int] = []
    renewers: list[threading.Thread] = []

    def look(key: str) -> int:
        seen.append(redis.pttl(lease))
        renewers.extend(thread for thread in threading.enumerate() if thread.name == f"lease {task_id}")
        return 1

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(counted_task, "run", look)
        assert run(redis_app, task_id) == states.SUCCESS
    assert 0 < seen[0] <= runs.LEASE_SECONDS * 1000
    assert [(renewer.daemon, renewer.is_alive()) for renewer in renewers] == [(True, False)]  # never holds up exit
    assert redis.exists(lease) == 0


def test_a_duplicate_while_another_run_holds_the_lease_is_sent_again_for_later(
    redis_app: Flask, redis: Redis, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another run holds the lease: this message does not run now; it is published again, as it was, for later."""
    caplog.set_level(logging.INFO, logger="app.tasking.runs")
    celery_app = redis_app.extensions["celery"]
    task_id = str(uuid.uuid4())
    redis.set(celery_app.backend.get_key_for_task(task_id, ".run"), "the-first-run", px=4000)
    sent: list[dict[str, Any]] = []
    monkeypatch.setattr(celery_app.tasks[counted_task.name], "apply_async", lambda *a, **options: sent.append(options))
    assert run(redis_app, task_id) == IGNORED
    assert RUNS[task_id] == 0
    [options] = sent
    assert (options["task_id"], options["routing_key"]) == (task_id, "celery")
    assert 3 < options["countdown"] <= 4  # what is left of the other run's lease
    held = f"{options['countdown']:.1f}"
    assert (
        f"{counted_task.name}[{task_id}] is running elsewhere: message sent again for {held} s from now"
        in caplog.messages
    )


def test_a_claim_answers_the_seconds_left_of_the_lease_it_met(
    redis_app: Flask, redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lease's claim() answers the other run's lease in seconds: what the duplicate waits."""
    monkeypatch.setattr(runs, "LEASE_SECONDS", 40.0)  # long enough that a unit's error shows past the test's 20 ms
    backend, task_id = redis_app.extensions["celery"].backend, str(uuid.uuid4())
    first = runs._Lease(backend, task_id)
    assert first.claim() == 0
    try:
        left_ms = redis.pttl(first.key)
        held = runs._Lease(backend, task_id).claim()
    finally:
        first.end()
    assert held is not None and left_ms - 20 <= held * 1000 <= left_ms


def test_a_lease_with_no_time_left_to_tell_still_holds_the_task(redis_app: Flask, redis: Redis) -> None:
    """A lease key Redis gives no time left (PTTL -1: no expiry; 0: under a millisecond) is still held.

    claim() answers a millisecond at least: never 0 (taken, the task would run beside the
    other run) nor less (finished, the message would be dropped).
    """
    backend, task_id = redis_app.extensions["celery"].backend, str(uuid.uuid4())
    redis.set(backend.get_key_for_task(task_id, ".run"), "another-run")
    assert runs._Lease(backend, task_id).claim() == 0.001


def test_a_run_whose_lease_went_to_another_run_leaves_that_lease_alone(
    redis_app: Flask, redis: Redis, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Its lease lapsed and another run took the key: renewals neither extend it nor count as held; end() keeps it."""
    monkeypatch.setattr(runs, "RENEW_EVERY_SECONDS", 0.01)
    lease = runs._Lease(redis_app.extensions["celery"].backend, task_id := str(uuid.uuid4()))
    assert lease.claim() == 0
    with a_line_logged() as logged:
        redis.set(lease.key, "another-run", px=5000)  # shorter than LEASE_SECONDS: a renewal would make it longer
        assert logged.wait(timeout=30)
    lease.end()
    assert f"the run lease of {task_id} lapsed: another run may start" in caplog.messages
    assert (redis.get(lease.key), redis.pttl(lease.key) <= 5000) == (b"another-run", True)


@pytest.mark.parametrize(("seconds", "milliseconds"), [(0.0004, 1), (0.0016, 2)])
def test_a_lease_shorter_than_a_millisecond_is_asked_for_one(
    redis_app: Flask, redis: Redis, monkeypatch: pytest.MonkeyPatch, seconds: float, milliseconds: int
) -> None:
    """Leases go to Redis in whole milliseconds, at least one: 0.4 ms is 1 (PX 0 Redis refuses), 1.6 ms is 2."""
    monkeypatch.setattr(runs, "LEASE_SECONDS", seconds)
    lease = runs._Lease(redis_app.extensions["celery"].backend, str(uuid.uuid4()))
    sent = sending(redis, monkeypatch)
    assert lease.claim() == 0
    lease.end()
    claims = [args for args in sent if args[0] == "EVALSHA" and args[1] == sha1(runs.CLAIM)]
    assert claims and {args[-1] for args in claims} == {milliseconds}


def test_the_lease_scripts_go_to_redis_once_then_by_their_sha1(
    redis_app: Flask, redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Runs send the lease's Lua by its SHA1 (EVALSHA): Redis gets each script's text once (SCRIPT LOAD), no EVAL."""
    sent = sending(redis, monkeypatch)
    for _ in range(3):
        assert run(redis_app, str(uuid.uuid4())) == states.SUCCESS
    scripts = {sha1(script): script for script in (runs.CLAIM, runs.KEEP_OR_END)}
    loaded = [args[1] for args in sent if args[0] == "SCRIPT LOAD" and args[1] in scripts.values()]
    called = Counter(args[1] for args in sent if args[0] == "EVALSHA" and args[1] in scripts)
    assert sorted(loaded) == sorted(scripts.values())
    assert called == dict.fromkeys(scripts, 3 + 1)  # claimed and ended thrice; the first, refused NOSCRIPT, again
    assert not [args for args in sent if args[0].startswith("EVAL") and args[0] != "EVALSHA"]


def test_a_lease_no_longer_renewed_lapses_and_the_task_runs(redis_app: Flask, redis: Redis) -> None:
    """The run that held the lease died (no renewal): once it lapses, the next message runs the task."""
    celery_app = redis_app.extensions["celery"]
    task_id = str(uuid.uuid4())
    lease = celery_app.backend.get_key_for_task(task_id, ".run")
    redis.set(lease, "a-dead-run", px=1)
    while redis.exists(lease):  # it lapses
        time.sleep(0.001)
    assert run(redis_app, task_id) == states.SUCCESS
    assert RUNS[task_id] == 1


def test_the_lease_is_renewed_while_the_run_goes_on(
    redis_app: Flask, redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run longer than the lease keeps it: renewed every RENEW_EVERY_SECONDS to LEASE_SECONDS."""
    monkeypatch.setattr(runs, "RENEW_EVERY_SECONDS", 0.01)
    backend = redis_app.extensions["celery"].backend
    renewals = threading.Semaphore(0)
    run_script = runs._Lease._run

    def run_and_tell(lease: runs._Lease, script: str, keys: list[bytes], *seconds: float) -> int:
        answer = run_script(lease, script, keys, *seconds)
        if script == runs.KEEP_OR_END and seconds:  # a renewal
            renewals.release()
        return answer

    monkeypatch.setattr(runs._Lease, "_run", run_and_tell)
    task_id = str(uuid.uuid4())
    lease = backend.get_key_for_task(task_id, ".run")
    seen: list[int] = []

    def wait_for_a_renewal(key: str) -> int:
        while renewals.acquire(blocking=False):  # those before this point
            pass
        redis.pexpire(lease, 1000)  # shorter than LEASE_SECONDS: a renewal makes it long again
        # Two more: the second started after the PEXPIRE above.
        assert renewals.acquire(timeout=30) and renewals.acquire(timeout=30)
        seen.append(redis.pttl(lease))
        return 1

    monkeypatch.setattr(counted_task, "run", wait_for_a_renewal)
    assert run(redis_app, task_id) == states.SUCCESS
    assert seen[0] > 1000


def test_a_lease_lost_while_running_is_logged(
    redis_app: Flask, redis: Redis, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A renewal that finds the lease gone (Redis away longer than the lease) says another run may start."""
    monkeypatch.setattr(runs, "RENEW_EVERY_SECONDS", 0.01)
    task_id = str(uuid.uuid4())
    lease = redis_app.extensions["celery"].backend.get_key_for_task(task_id, ".run")

    def lose_the_lease(key: str) -> int:
        redis.delete(lease)
        assert logged.wait(timeout=30)
        return 1

    monkeypatch.setattr(counted_task, "run", lose_the_lease)
    with a_line_logged() as logged:
        run(redis_app, task_id)
    assert f"the run lease of {task_id} lapsed: another run may start" in caplog.messages


def test_with_the_backend_away_the_task_still_runs(
    redis_app: Flask, redis: Redis, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Redis refusing: no lease, no STARTED, yet the task runs and succeeds (as with plain Celery), each step logged."""

    def refuse(lease: runs._Lease) -> None:
        raise RedisConnectionError("refused")

    monkeypatch.setattr(runs._Lease, "claim", refuse)
    send = redis.execute_command
    refused: list[str] = []

    def refuse_the_first_write(*args: Any, **options: Any) -> Any:  # STARTED's; the result's is let through
        if not refused:
            refused.append(str(args[0]))
            raise RedisConnectionError("Connection refused")
        return send(*args, **options)

    monkeypatch.setattr(redis, "execute_command", refuse_the_first_write)
    task_id = str(uuid.uuid4())
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(counted_task, "run", lambda key: RUNS.update([key]) or 1)
        assert run(redis_app, task_id) == states.SUCCESS
    assert RUNS[task_id] == 1
    assert "result backend unreachable (refused): run without looking for another run" in caplog.messages
    assert "result backend unreachable (Connection refused): STARTED not recorded" in caplog.messages


def test_a_lease_that_cannot_be_renewed_or_ended_is_left_to_lapse(
    redis_app: Flask, redis: Redis, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Redis going away mid-run: the renewals and the release fail, logged; the run ends as usual."""
    monkeypatch.setattr(runs, "RENEW_EVERY_SECONDS", 0.01)
    failed = threading.Event()
    run_script = runs._Lease._run

    def refuse_after_the_claim(lease: runs._Lease, script: str, keys: list[bytes], *seconds: float) -> int:
        if script == runs.CLAIM:
            return run_script(lease, script, keys, *seconds)
        failed.set()
        raise RedisConnectionError("gone")

    monkeypatch.setattr(runs._Lease, "_run", refuse_after_the_claim)
    monkeypatch.setattr(counted_task, "run", lambda key: failed.wait(timeout=30) and 1)
    assert run(redis_app, str(uuid.uuid4())) == states.SUCCESS
    assert "result backend unreachable (gone): run lease not renewed" in caplog.messages
    assert "result backend unreachable (gone): run lease left to lapse" in caplog.messages


@contextmanager
def a_line_logged() -> Iterator[threading.Event]:
    """Inside, an event set once app/tasking/runs.py logs a line (from the renewer's thread too)."""
    logged = threading.Event()
    handler = logging.Handler()
    handler.emit = lambda record: logged.set()  # type: ignore[method-assign]
    logging.getLogger("app.tasking.runs").addHandler(handler)
    try:
        yield logged
    finally:
        logging.getLogger("app.tasking.runs").removeHandler(handler)
