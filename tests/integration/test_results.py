"""The factory's Redis result backend (app/fixes/redis_results.py), on a real Redis."""

from __future__ import annotations

import uuid

import pytest
from celery import states
from celery.result import AsyncResult
from flask import Flask
from flask.testing import FlaskClient

from app.tasks import sample_task
from tests.integration.conftest import wait_for_state

pytestmark = pytest.mark.integration


def _subscribe_calls(app: Flask) -> int:
    stats = app.extensions["celery"].backend.client.info("commandstats")
    return int(stats.get("cmdstat_subscribe", {}).get("calls", 0))


def test_posting_tasks_subscribes_to_no_result_channel(app: Flask, client: FlaskClient) -> None:
    """POST /task/ sends without SUBSCRIBE: no replies pile up unread (celery#4983)."""
    before = _subscribe_calls(app)
    for _ in range(3):
        assert client.post("/task/").status_code == 202
    assert _subscribe_calls(app) == before


@pytest.mark.parametrize("seconds", [0, 1], ids=["finished-before-get", "finishes-during-get"])
def test_get_still_receives_the_result(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch, seconds: float
) -> None:
    """AsyncResult.get() subscribes when it starts waiting, so it misses no result."""
    monkeypatch.setitem(app.config, "SAMPLE_TASK_SECONDS", seconds)
    celery = app.extensions["celery"]
    with app.app_context():
        task_id = celery.tasks[sample_task.name].delay().id
    if not seconds:
        # Stored before get() subscribes. Watched over HTTP: reading a result's state
        # caches it in that AsyncResult, whose get() would then answer from the cache.
        wait_for_state(client, f"/task/{task_id}", "SUCCESS")
    result: AsyncResult = celery.AsyncResult(task_id)
    assert result.get(timeout=30) is not None


@pytest.mark.parametrize("final", [states.SUCCESS, states.FAILURE], ids=["success", "failure"])
def test_a_finished_result_stays_on_a_real_redis(app: Flask, final: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Redis runs the backend's Lua: a second run's writes, even past Celery's own read, leave the first result."""
    backend = app.extensions["celery"].backend
    task_id = str(uuid.uuid4())
    backend.store_result(task_id, ValueError("first") if final == states.FAILURE else "first", final)
    monkeypatch.setattr(backend, "_get_task_meta_for", lambda task_id: {"status": states.STARTED, "result": None})
    for state, result in [(states.STARTED, None), (states.SUCCESS, "second")]:
        backend.store_result(task_id, result, state)
    monkeypatch.undo()
    meta = backend.get_task_meta(task_id)
    assert meta["status"] == final
    assert str(meta["result"]) == "first"
    backend.forget(task_id)
