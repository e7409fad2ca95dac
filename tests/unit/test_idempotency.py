"""POST /task/ with an Idempotency-Key (app/web/idempotency.py), on the in-memory backend."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from kombu.exceptions import OperationalError

from app import create_app
from tests.unit.conftest import IN_MEMORY_CONFIG, WriteConfig


@pytest.fixture
def published(app: Flask, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The ids of the sample tasks published (recorded, not run)."""
    ids: list[str] = []
    task = app.extensions["celery"].tasks["app.tasks.sample_task"]
    monkeypatch.setattr(task, "apply_async", lambda args, kwargs, task_id, **options: ids.append(task_id))
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


def test_after_a_503_the_same_key_succeeds_with_the_same_id(
    key: str, app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A publish that fails answers 503 and keeps the key's id: the retry publishes that task."""
    task = app.extensions["celery"].tasks["app.tasks.sample_task"]
    attempts: list[str] = []

    def refuse_once(args: object, kwargs: object, task_id: str, **options: object) -> None:
        attempts.append(task_id)
        if len(attempts) == 1:
            raise OperationalError("broker unreachable")

    monkeypatch.setattr(task, "apply_async", refuse_once)
    assert post(client, key).status_code == 503
    retried = post(client, key)
    assert retried.status_code == 202
    assert attempts == [retried.json["task_id"]] * 2


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


def test_a_database_result_backend_answers_501(key: str, write_config: WriteConfig, tmp_path: Path) -> None:
    """The SQLAlchemy backend keeps no key records: the header is refused, plainly."""
    celery = {**IN_MEMORY_CONFIG["celery"], "result_backend": f"db+sqlite:///{tmp_path}/results.db"}
    write_config({**IN_MEMORY_CONFIG, "celery": celery})
    response = post(create_app().test_client(), key)
    assert (response.status_code, response.is_json) == (501, True)


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()
