"""Unit tier: no services; tasks run eagerly on an in-memory broker and result backend."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from celery.backends.redis import RedisBackend
from flask import Flask
from flask.testing import FlaskClient

import tests.tasks  # noqa: F401  (registers the probe tasks with every Celery app)
from app import create_app

IN_MEMORY_CONFIG: dict[str, Any] = {
    "secret_key": "unit-test-secret",
    "sample_task_seconds": 0,
    "celery": {"broker_url": "memory://", "result_backend": "cache+memory://"},
}
EAGER = {"task_always_eager": True, "task_eager_propagates": True, "task_store_eager_result": True}

WriteConfig = Callable[..., Path]


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


@pytest.fixture
def app(write_config: WriteConfig) -> Flask:
    """An app on the in-memory config, running its tasks eagerly."""
    write_config()
    return create_app({"CELERY": EAGER})


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client of `app`."""
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
