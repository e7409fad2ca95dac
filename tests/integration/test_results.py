"""The factory's Redis result backend (app/results.py), on a real Redis."""

from __future__ import annotations

import time

import pytest
from celery.result import AsyncResult
from flask import Flask
from flask.testing import FlaskClient

from app.tasks import sample_task

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
        result: AsyncResult = celery.tasks[sample_task.name].delay()
        # Watched through another AsyncResult: reading `result.state` would cache the
        # result in `result`, and get() would answer from that cache.
        deadline = time.monotonic() + 30
        while not seconds and celery.AsyncResult(result.id).state != "SUCCESS" and time.monotonic() < deadline:
            time.sleep(0.05)  # stored before get() subscribes
        assert result.get(timeout=30) is not None
