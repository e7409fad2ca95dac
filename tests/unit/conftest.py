"""Unit tier: no services; tasks run eagerly on an in-memory broker and result backend."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from celery import Task
from celery.backends.cache import _DUMMY_CLIENT_CACHE
from celery.backends.redis import RedisBackend
from flask import Flask
from flask.testing import FlaskClient

import tests.tasks  # noqa: F401  (registers the probe tasks with every Celery app)
from app import create_app
from app.web.auth import owner_record


def token_hash(token: str) -> str:
    """The value auth.tokens holds for `token`."""
    return "sha256:" + hashlib.sha256(token.encode()).hexdigest()


# The unit tier's clients and their tokens (app/web/auth.py): the `client` fixture sends CLIENT's.
CLIENT, TOKEN = "tester", "unit-test-token"
OTHER_CLIENT, OTHER_TOKEN = "other", "other-unit-test-token"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
IN_MEMORY_CONFIG: dict[str, Any] = {
    # Apps a test builds itself serve without authentication; the `app` fixture's with it.
    "auth": False,
    "secret_key": "unit-test-secret",
    # Far above what any test starts (limits.py's tests set their own); never a real Redis.
    "limits": {"start_rate": "10000/second", "unfinished_tasks": 10000, "storage_url": "memory://"},
    "sample_task_seconds": 0,
    "celery": {"broker_url": "memory://", "result_backend": "cache+memory://"},
}
EAGER = {"task_always_eager": True, "task_eager_propagates": True, "task_store_eager_result": True}
TOKENS = {
    "AUTH_TOKENS": {
        CLIENT: hashlib.sha256(TOKEN.encode()).digest(),
        OTHER_CLIENT: hashlib.sha256(OTHER_TOKEN.encode()).digest(),
    }
}

WriteConfig = Callable[..., Path]


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The messages published, their ``kwargs`` and options: Celery's apply_async, below the factory's, replaced."""
    messages: list[dict[str, Any]] = []

    def publish(task: Task, args: object, kwargs: dict[str, Any], **options: Any) -> SimpleNamespace:
        messages.append({"kwargs": kwargs, **options})
        return SimpleNamespace(id=options["task_id"])

    monkeypatch.setattr(Task, "apply_async", publish)
    return messages


@pytest.fixture(autouse=True)
def _no_records_left_by_earlier_tests() -> None:
    """Each test starts with an empty in-memory result backend (Celery's `cache+memory://` keeps one per process).

    A test's fixed task id would meet the record another test left under it; so would every
    test under mutmut, which runs the whole suite once, then forks its process for each mutant.
    """
    _DUMMY_CLIENT_CACHE.clear()


@pytest.fixture
def write_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> WriteConfig:
    """Write a config file (JSON if its name ends in .json) and point FLASK_CONFIG at it."""

    def write(data: Any = IN_MEMORY_CONFIG, name: str = "api-config.yaml") -> Path:
        path = tmp_path / name
        path.write_text(json.dumps(data) if name.endswith(".json") else yaml.safe_dump(data))
        path.chmod(0o600)  # it holds a secret key
        monkeypatch.setenv("FLASK_CONFIG", str(path))
        return path

    return write


class TokenClient(FlaskClient):
    """A test client that sends CLIENT's token unless a request gives its own Authorization."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.environ_base["HTTP_AUTHORIZATION"] = BEARER["Authorization"]


def limited_app(
    write_config: WriteConfig, eager: bool = True, celery: dict[str, Any] | None = None, **settings: Any
) -> Flask:
    """An app authenticating CLIENT and OTHER_CLIENT, with these limits and Celery settings (the rest: the tier's)."""
    write_config({**IN_MEMORY_CONFIG, "limits": {**IN_MEMORY_CONFIG["limits"], **settings}})
    # Not eager: a queue of its own (the in-memory broker's queues are shared by the whole process).
    app = create_app({"CELERY": {**(EAGER if eager else {"task_default_queue": "limits"}), **(celery or {})}, **TOKENS})
    app.test_client_class = TokenClient
    return app


def other_client(app: Flask) -> FlaskClient:
    """A test client sending OTHER_CLIENT's token."""
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {OTHER_TOKEN}"
    return client


def owned(app: Flask, task_id: str, client: str = CLIENT) -> str:
    """Record `task_id` as `client`'s, as starting it through the API does; answers the id."""
    app.extensions["celery"].backend.store_result(owner_record(task_id), client, "SUCCESS")
    return task_id


@pytest.fixture
def app(write_config: WriteConfig) -> Flask:
    """An app on the in-memory config, running its tasks eagerly, its clients authenticated (CLIENT, OTHER_CLIENT)."""
    write_config()
    app = create_app({"CELERY": EAGER, **TOKENS})
    app.test_client_class = TokenClient
    return app


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client of `app`, sending the token of CLIENT."""
    return app.test_client()


def subscribe_after_the_first_read(
    backend: RedisBackend, monkeypatch: pytest.MonkeyPatch, between: Callable[[], Any]
) -> None:
    """Run the next wait in an order Redis may run it: its read, then `between`, then its SUBSCRIBE.

    get() sends the SUBSCRIBE first, on the pub/sub connection, and reads on another: nothing
    orders the two (docs/upstream.md, "get() reads before Redis subscribes").
    """
    consumer = backend.result_consumer
    subscribe, read = consumer._consume_from, consumer.on_wait_for_pending
    held: list[str] = []

    def read_then_subscribe(result: Any, **kwargs: Any) -> None:
        monkeypatch.setattr(consumer, "on_wait_for_pending", read)
        monkeypatch.setattr(consumer, "_consume_from", subscribe)
        read(result, **kwargs)
        between()
        for task_id in held:
            consumer.consume_from(task_id)

    monkeypatch.setattr(consumer, "_consume_from", held.append)
    monkeypatch.setattr(consumer, "on_wait_for_pending", read_then_subscribe)
