"""POST /task/ with an Idempotency-Key (app/web/idempotency.py), on the in-memory backend."""

from __future__ import annotations

import hashlib
import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fakeredis
import pytest
from celery import Task
from flask import Flask
from flask.testing import FlaskClient
from kombu.exceptions import OperationalError

from app import create_app
from app.fixes.redis_results import PublisherRedisBackend
from app.web import idempotency
from tests.unit.conftest import CLIENT, IN_MEMORY_CONFIG, WriteConfig


@dataclass
class Sent:
    """What apply_async answers: the task's id."""

    id: str


@pytest.fixture
def published(app: Flask, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The ids of the sample tasks published (recorded, not run)."""
    ids: list[str] = []

    def publish(task: Task, args: object, kwargs: object, task_id: str, **options: object) -> Sent:
        ids.append(task_id)
        return Sent(task_id)

    monkeypatch.setattr(Task, "apply_async", publish)  # Celery's own, below the factory's (which records the id)
    return ids


@pytest.fixture
def key() -> str:
    """A key no other test uses (the in-memory backend is shared by the tests of a process)."""
    return f"order-{uuid.uuid4()}"


def post(client: FlaskClient, key: str, **body: Any) -> Any:
    return client.post("/task/", json=body, headers={"Idempotency-Key": key})


def test_the_same_key_and_body_answer_the_same_task_and_queue_nothing_new(
    key: str, client: FlaskClient, published: list[str]
) -> None:
    """A repeated POST gets the first one's answer (202, its id, its Location); one task is published."""
    first, again = post(client, key, seconds=1), post(client, key, seconds=1)
    assert (first.status_code, again.status_code) == (202, 202)
    assert again.json == first.json and again.headers["Location"] == first.headers["Location"]
    assert published == [first.json["task_id"]]


def test_a_quoted_key_is_the_same_key(key: str, client: FlaskClient, published: list[str]) -> None:
    """The draft's form, a structured-field string, names the same key as the bare value."""
    assert post(client, f'"{key}"').json == post(client, key).json
    assert len(published) == 1


@pytest.mark.parametrize(
    ("quoted", "bare"),
    [('"say \\"hi\\""', 'say "hi"'), ('"back\\\\slash"', "back\\slash"), ('"\\\\\\""', '\\"')],
    ids=["escaped-quote", "escaped-backslash", "both"],
)
def test_a_quoted_key_with_escapes_is_the_key_they_spell(
    key: str, client: FlaskClient, published: list[str], quoted: str, bare: str
) -> None:
    """In a structured-field string `\\"` is a quote and `\\\\` a backslash: the same key as the bare value."""
    assert post(client, quoted[0] + key + quoted[1:]).json == post(client, key + bare).json
    assert len(published) == 1


def test_parameters_in_another_order_are_the_same_parameters(key: str, app: Flask) -> None:
    """A service whose task takes several parameters: their order in the body does not matter."""
    celery_app = app.extensions["celery"]
    submitted: list[str] = []

    def submit(task_id: str) -> str:
        submitted.append(task_id)
        return task_id

    first = idempotency.submit_once(celery_app, key, {"seconds": 1, "size": 2}, submit)
    again = idempotency.submit_once(celery_app, key, {"size": 2, "seconds": 1}, submit)
    assert first == again == submitted[0]


def test_another_key_or_no_key_starts_another_task(key: str, client: FlaskClient, published: list[str]) -> None:
    """Keys are independent; without the header every POST is a new task, as before."""
    ids = {post(client, f"{key}-a").json["task_id"], post(client, f"{key}-b").json["task_id"]}
    ids |= {client.post("/task/").json["task_id"], client.post("/task/").json["task_id"]}
    assert len(ids) == len(published) == 4


def test_the_same_key_with_other_parameters_is_422(key: str, client: FlaskClient, published: list[str]) -> None:
    """Reusing a key for other work is a client error, and queues nothing."""
    post(client, key, seconds=1)
    response = post(client, key, seconds=2)
    assert (response.status_code, response.json["error"]["message"]) == (
        422,
        "This Idempotency-Key was used with other parameters.",
    )
    assert len(published) == 1


def test_a_key_being_accepted_elsewhere_is_409(key: str, app: Flask, client: FlaskClient, published: list[str]) -> None:
    """While another request (another process) holds the key's lock, the POST answers 409."""
    post(client, key)  # fixes the key's task id
    backend = app.extensions["celery"].backend
    record = backend.get_key_for_task
    first_id = published.pop()
    backend.forget(first_id)  # as if that request had not finished accepting
    backend.set(record("idempotency-lock-" + _digest(key)), "accepting")
    response = post(client, key)
    assert (response.status_code, response.json["error"]["code"], published) == (409, 409, [])


def refuse_the_first_publish(task: Any, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Make `task`'s first publish fail as a refusing broker does; answer the ids of every attempt."""
    attempts: list[str] = []

    def refuse_once(task: Task, args: object, kwargs: object, task_id: str, **options: object) -> Sent:
        attempts.append(task_id)
        if len(attempts) == 1:
            raise OperationalError("broker unreachable")
        return Sent(task_id)

    monkeypatch.setattr(Task, "apply_async", refuse_once)  # Celery's own publish, below the factory's
    return attempts


def test_after_a_503_the_same_key_queues_a_new_task(
    key: str, app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A publish that fails answers 503 and frees the key: the refused id stays REVOKED, the retry has its own."""
    task = app.extensions["celery"].tasks["app.tasks.sample_task"]
    attempts = refuse_the_first_publish(task, monkeypatch)
    assert post(client, key).status_code == 503
    retried = post(client, key)
    assert retried.status_code == 202
    assert attempts == [attempts[0], retried.json["task_id"]] and attempts[0] != attempts[1]
    assert app.extensions["celery"].AsyncResult(attempts[0]).state == "REVOKED"
    assert post(client, key).json["task_id"] == attempts[1]


def test_elsewhere_than_on_redis_requests_with_a_key_take_turns_in_the_process(
    key: str, client: FlaskClient, published: list[str]
) -> None:
    """Without Redis's atomic SET, a POST with a key waits for the process's lock: no two check and add at once."""
    with ThreadPoolExecutor(1) as pool:
        with idempotency._LOCAL:  # as if another request held it
            waiting = pool.submit(post, client, key)
            with pytest.raises(TimeoutError):
                waiting.result(timeout=0.5)
        assert (waiting.result(timeout=5).status_code, len(published)) == (202, 1)


@pytest.mark.parametrize(
    "key",
    ["", '""', "k" * 256, "bell\x07", "tab\tkey", "café"],
    ids=["empty", "empty-quoted", "too-long", "control-character", "tab", "not-ascii"],
)
def test_a_malformed_key_is_400(client: FlaskClient, published: list[str], key: str) -> None:
    """Empty, over 255 characters, control or non-ASCII characters: 400 naming the header, nothing queued."""
    response = client.post("/task/", headers={"Idempotency-Key": key})
    assert (response.status_code, response.json["error"]["message"], published) == (
        400,
        "Idempotency-Key: expected 1 to 255 printable ASCII characters.",
        [],
    )


def test_the_longest_key_is_accepted(client: FlaskClient, published: list[str]) -> None:
    """255 characters is the limit, inclusive."""
    assert post(client, "k" * 255).status_code == 202


def test_a_database_result_backend_answers_501_naming_what_is_needed(
    key: str, write_config: WriteConfig, tmp_path: Path
) -> None:
    """The SQLAlchemy backend keeps no key records: the header is refused plainly, saying which backends keep keys."""
    celery = {**IN_MEMORY_CONFIG["celery"], "result_backend": f"db+sqlite:///{tmp_path}/results.db"}
    write_config({**IN_MEMORY_CONFIG, "celery": celery})
    response = post(create_app().test_client(), key)
    assert (response.status_code, response.json["error"]["message"]) == (
        501,
        "Idempotency-Key needs a key-value result backend (Redis, memcached, file).",
    )


def _digest(key: str, client: str | None = CLIENT) -> str:
    """The digest a key is kept under: the `client` fixture's client's own key; None: without authentication."""
    return hashlib.sha256((key if client is None else f"{client}\n{key}").encode()).hexdigest()


@pytest.fixture
def redis() -> fakeredis.FakeRedis:
    """A Redis of the test's own (fakeredis with lupa: SET NX GET, and the backend's Lua writes)."""
    return fakeredis.FakeRedis()


def redis_app_on(redis: fakeredis.FakeRedis, write_config: WriteConfig, **celery: object) -> Flask:
    """An app whose result backend is the factory's Redis backend, on `redis`."""
    # One backend for every thread (Celery's default is one a thread), so one client.
    settings = {"result_backend": "redis://", "result_backend_thread_safe": True, **celery}
    write_config({**IN_MEMORY_CONFIG, "celery": {**IN_MEMORY_CONFIG["celery"], **settings}})
    app = create_app()  # not eager: the task stays in the memory queue
    backend = app.extensions["celery"].backend
    assert isinstance(backend, PublisherRedisBackend)  # else the tests below would leave the Redis path untried
    backend.client = redis
    return app


@pytest.fixture
def redis_app(redis: fakeredis.FakeRedis, write_config: WriteConfig) -> Flask:
    """An app on `redis`, with the factory's Celery settings."""
    return redis_app_on(redis, write_config)


def names(app: Flask, key: str) -> tuple[bytes, bytes]:
    """The Redis keys of `key`'s record and of its lock."""
    backend = app.extensions["celery"].backend
    return backend.get_key_for_task(f"idempotency-key-{_digest(key, None)}"), backend.get_key_for_task(
        f"idempotency-lock-{_digest(key, None)}"
    )


def test_on_redis_every_repeat_answers_the_first_task(key: str, redis: fakeredis.FakeRedis, redis_app: Flask) -> None:
    """On a Redis result backend as on others: one task for a key, its id answered to every repeat."""
    client = redis_app.test_client()
    responses = [post(client, key, seconds=1) for _ in range(3)]
    assert [response.status_code for response in responses] == [202] * 3
    assert {response.json["task_id"] for response in responses} == {responses[0].json["task_id"]}
    record = json.loads(redis.get(names(redis_app, key)[0]))
    assert record["task_id"] == responses[0].json["task_id"]
    assert redis_app.extensions["celery"].AsyncResult(record["task_id"]).exists()


def test_on_redis_the_record_lives_as_long_as_results_and_the_lock_only_while_accepting(
    key: str, redis: fakeredis.FakeRedis, redis_app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The key's record expires with results (result_expires: a day); its lock lives while the task is published.

    Held then with ACCEPTING_SECONDS to live (a request that died leaves it only that long), removed once answered.
    """
    record, lock = names(redis_app, key)
    lock_ttl_while_publishing: list[int] = []

    def publish(task: Task, args: object, kwargs: object, task_id: str, **options: object) -> Sent:
        lock_ttl_while_publishing.append(redis.ttl(lock))
        return Sent(task_id)

    monkeypatch.setattr(Task, "apply_async", publish)  # Celery's own, below the factory's
    assert post(redis_app.test_client(), key).status_code == 202
    assert lock_ttl_while_publishing == [idempotency.ACCEPTING_SECONDS]
    assert (redis.ttl(record), redis.exists(lock)) == (86400, 0)


def test_on_redis_results_kept_forever_keep_the_key_forever(
    key: str, redis: fakeredis.FakeRedis, write_config: WriteConfig
) -> None:
    """`result_expires: 0` keeps results forever: the key's record gets no expiry (Redis refuses EX 0)."""
    app = redis_app_on(redis, write_config, result_expires=0)
    assert post(app.test_client(), key).status_code == 202
    assert redis.ttl(names(app, key)[0]) == -1  # Redis's answer for a key without expiry


def test_on_redis_other_parameters_are_422_and_change_nothing(key: str, redis_app: Flask) -> None:
    """The key's record stays the first request's: other parameters are refused, the same ones still answered."""
    client = redis_app.test_client()
    first = post(client, key, seconds=1)
    response = post(client, key, seconds=2)
    assert (response.status_code, response.json["error"]["message"]) == (
        422,
        "This Idempotency-Key was used with other parameters.",
    )
    assert post(client, key, seconds=1).json == first.json


def test_on_redis_a_key_being_accepted_elsewhere_is_409(key: str, redis: fakeredis.FakeRedis, redis_app: Flask) -> None:
    """While another process holds the key's lock in Redis, the POST answers 409 and leaves the lock to it."""
    record, lock = names(redis_app, key)
    redis.set(lock, "accepting")
    response = post(redis_app.test_client(), key)
    assert (response.status_code, response.json["error"]["message"]) == (
        409,
        "A request with this Idempotency-Key is being accepted; try again shortly.",
    )
    assert redis.get(lock) == b"accepting"
    task_id = json.loads(redis.get(record))["task_id"]
    assert not redis_app.extensions["celery"].AsyncResult(task_id).exists()  # nothing queued


def test_on_redis_a_failed_publish_releases_the_lock_and_the_key(
    key: str, redis: fakeredis.FakeRedis, redis_app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 503 removes the key's record and lock at once: the retry is not refused with 409, and has a new id."""
    task = redis_app.extensions["celery"].tasks["app.tasks.sample_task"]
    attempts = refuse_the_first_publish(task, monkeypatch)
    client = redis_app.test_client()
    assert post(client, key).status_code == 503
    assert [redis.exists(name) for name in names(redis_app, key)] == [0, 0]
    retried = post(client, key)
    assert retried.status_code == 202
    assert attempts == [attempts[0], retried.json["task_id"]] and attempts[0] != attempts[1]


def test_on_redis_requests_do_not_wait_for_each_other_in_the_process(key: str, redis_app: Flask) -> None:
    """Redis's atomic SET decides: a POST with a key does not wait for the process's own lock."""
    # The lock is released before the pool is joined: a POST that waits for it fails the test, not hangs it.
    with ThreadPoolExecutor(1) as pool, idempotency._LOCAL:  # as if another request held it
        response = pool.submit(post, redis_app.test_client(), key).result(timeout=5)
    assert response.status_code == 202
