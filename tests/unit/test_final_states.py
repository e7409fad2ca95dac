"""A final state stays on each result backend the factory selects (app/fixes/final_states.py); DELETE says which."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import fakeredis
import pytest
from celery import states
from flask import Flask

from app import create_app
from app.fixes.final_states import replaces, status
from tests.unit.conftest import IN_MEMORY_CONFIG, WriteConfig

BACKENDS = ["redis", "cache", "file", "database"]
LATER_WRITES = [(states.STARTED, None), ("PROGRESS", {"progress": 0.5}), (states.RETRY, ValueError("retry"))]
LATER_WRITES += [(states.SUCCESS, "second run"), (states.FAILURE, ValueError("second run"))]
LATER_WRITES += [(states.REVOKED, ValueError("cancelled"))]


@pytest.fixture(params=BACKENDS)
def app(request: pytest.FixtureRequest, write_config: WriteConfig, tmp_path: Path) -> Flask:
    """A non-eager app on one of the factory's result backends (Redis: a FakeRedis; SQLite for a database)."""
    url = {
        "redis": "redis://",
        "cache": "cache+memory://",
        "file": f"file://{tmp_path}",
        "database": f"db+sqlite:///{tmp_path}/results.db",
    }[request.param]
    write_config({**IN_MEMORY_CONFIG, "celery": {**IN_MEMORY_CONFIG["celery"], "result_backend": url}})
    app = create_app()
    if request.param == "redis":
        app.extensions["celery"].backend.client = fakeredis.FakeRedis()
    return app


def first_result(final: str) -> object:
    return "first run" if final == states.SUCCESS else ValueError("first run")


@pytest.mark.parametrize("final", sorted(states.READY_STATES), ids=str.lower)
def test_no_later_write_replaces_a_final_state(app: Flask, final: str) -> None:
    """After SUCCESS, FAILURE or REVOKED, any state written later (a duplicate run, a retry, a cancel) is dropped."""
    backend, task_id = app.extensions["celery"].backend, str(uuid.uuid4())  # the memory cache is per process
    backend.store_result(task_id, first_result(final), final)
    for state, result in LATER_WRITES:
        backend.store_result(task_id, result, state)
    meta = backend.get_task_meta(task_id)
    assert (meta["status"], str(meta["result"])) == (final, "first run")


def test_a_write_keeps_its_traceback(app: Flask) -> None:
    """What a backend stores of a FAILURE is Celery's whole record: the traceback too."""
    backend, task_id = app.extensions["celery"].backend, str(uuid.uuid4())
    backend.store_result(task_id, ValueError("failed"), states.FAILURE, traceback="Traceback ...")
    assert backend.get_task_meta(task_id)["traceback"] == "Traceback ..."


def test_a_state_not_yet_final_gives_way(app: Flask) -> None:
    """PENDING, STARTED, PROGRESS and RETRY are each replaced by what comes next."""
    backend, task_id = app.extensions["celery"].backend, str(uuid.uuid4())
    seen = []
    for state, result in [(states.PENDING, None), *LATER_WRITES[:4]]:
        backend.store_result(task_id, result, state)
        seen.append(backend.get_task_meta(task_id)["status"])
    assert seen == [states.PENDING, states.STARTED, "PROGRESS", states.RETRY, states.SUCCESS]


def ending(app: Flask, task_id: str, end: str) -> Callable[[], None]:
    """What the worker stores as the task ends in `end`."""
    backend = app.extensions["celery"].backend
    return lambda: backend.store_result(task_id, first_result(end), end)


@pytest.mark.parametrize("end", [states.SUCCESS, states.FAILURE], ids=str.lower)
@pytest.mark.parametrize("when", ["just-before-the-cancel-writes", "just-after"])
def test_a_cancel_racing_the_tasks_end_answers_the_state_that_stays(
    app: Flask, monkeypatch: pytest.MonkeyPatch, end: str, when: str
) -> None:
    """The task ends as DELETE looks: ended first, 409 and its result stays; cancelled first, 202 and REVOKED stays."""
    client = app.test_client()
    task_id = client.post("/task/").json["task_id"]
    backend = app.extensions["celery"].backend
    mark_as_revoked = backend.mark_as_revoked

    def cancel_as_the_task_ends(*args: object, **kwargs: object) -> object:
        if when == "just-before-the-cancel-writes":
            ending(app, task_id, end)()
        written = mark_as_revoked(*args, **kwargs)
        if when == "just-after":
            ending(app, task_id, end)()
        return written

    monkeypatch.setattr(backend, "mark_as_revoked", cancel_as_the_task_ends)
    monkeypatch.setattr(app.extensions["celery"].control, "revoke", lambda task_id: None)
    response = client.delete(f"/task/{task_id}")
    stored = client.get(f"/task/{task_id}").json["state"]
    if when == "just-before-the-cancel-writes":
        assert (response.status_code, stored) == (409, end)
    else:
        assert (response.status_code, response.json["state"], stored) == (202, states.REVOKED, states.REVOKED)


@pytest.mark.parametrize("running", [states.STARTED, "PROGRESS", states.RETRY], ids=str.lower)
def test_a_message_sent_again_leaves_the_runs_state(app: Flask, running: str) -> None:
    """PENDING (recorded as any message is sent: a retry, a held-back duplicate) never replaces a run's state."""
    backend, task_id = app.extensions["celery"].backend, str(uuid.uuid4())
    backend.store_result(task_id, None, states.PENDING)
    backend.store_result(task_id, None, running)
    backend.store_result(task_id, None, states.PENDING)
    assert backend.get_task_meta(task_id)["status"] == running


@pytest.mark.parametrize(
    ("record", "state"),
    [
        (None, None),
        (b"not json", None),
        (b'"a string"', None),
        (b'{"status": "STARTED"}', "STARTED"),
        ('{"status": "REVOKED"}', "REVOKED"),
    ],
    ids=["nothing", "not-json", "not-a-mapping", "bytes", "text"],
)
def test_a_records_state_is_its_status(record: bytes | str | None, state: str | None) -> None:
    """A JSON mapping's status; nothing for anything else."""
    assert status(record) == state


@pytest.mark.parametrize(
    ("current", "new", "replaced"),
    [
        (None, states.PENDING, True),
        (states.PENDING, states.PENDING, True),
        (states.STARTED, states.PENDING, False),
        (states.RETRY, states.STARTED, True),
        (states.STARTED, states.SUCCESS, True),
        (states.SUCCESS, states.REVOKED, False),
        (states.REVOKED, states.SUCCESS, False),
        (states.FAILURE, None, False),
        (None, None, True),
    ],
    ids=lambda value: str(value),
)
def test_states_only_move_forward(current: str | None, new: str | None, replaced: bool) -> None:
    """Nothing replaces a final state; PENDING replaces only nothing or PENDING; the rest gives way."""
    assert replaces(current, new) is replaced
