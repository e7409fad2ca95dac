"""The database result backend that fails at once on an unreachable database (app/fixes/database_results.py).

That failure itself: test_dependencies.py (refused) and the integration tier (stalled). Here:
the rest stays as Celery's own backend does it.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from celery import Celery
from celery.backends.database import session
from flask import Flask
from sqlalchemy import create_engine
from sqlalchemy.exc import OperationalError

from app import create_app
from app.fixes.database_results import ReachableFirstDatabaseBackend, _ReachableFirstSessionManager
from tests.unit.conftest import IN_MEMORY_CONFIG, WriteConfig

ENGINES: list[Any] = []
# Nothing listens on port 1: each connection is refused at once, without any server.
REFUSING_DATABASE = "postgresql+psycopg://user@127.0.0.1:1/results"


def record_engine(engine: Any) -> None:
    """A `database_engine_callback`: Celery calls it with each engine it creates."""
    ENGINES.append(engine)


def test_the_engine_callback_still_sees_each_engine(write_config: WriteConfig, tmp_path: Path) -> None:
    """`database_engine_callback` (say, to add SQLAlchemy event listeners) is called as with Celery's own backend."""
    url = f"sqlite:///{tmp_path}/results.db"
    callback = f"{__name__}:record_engine"
    celery = {**IN_MEMORY_CONFIG["celery"], "result_backend": f"db+{url}", "database_engine_callback": callback}
    write_config({**IN_MEMORY_CONFIG, "celery": celery})
    app: Flask = create_app()
    ENGINES.clear()
    assert app.test_client().get(f"/task/{uuid.uuid4()}").status_code == 404
    assert [str(engine.url) for engine in ENGINES] == [url]


def test_it_is_built_like_celerys_own(tmp_path: Path) -> None:
    """The same arguments as Celery's DatabaseBackend, the database URL given positionally too."""
    url = f"sqlite:///{tmp_path}/results.db"
    backend = ReachableFirstDatabaseBackend(url, app=Celery(set_as_current=False))
    assert backend.url == url
    assert not backend.task_result_exists(str(uuid.uuid4()))


def sleeps_before_giving_up(manager: session.SessionManager, monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The sleeps between the tries of the manager's first table check, against a database that refuses."""
    sleeps: list[float] = []
    monkeypatch.setattr(session, "time", SimpleNamespace(sleep=sleeps.append))
    engine = create_engine(REFUSING_DATABASE)
    with pytest.raises(OperationalError, match="Connection refused"):
        manager.prepare_models(engine)
    engine.dispose()
    return sleeps


def test_an_unreachable_database_fails_the_first_call_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """One connection refused, no retries: the caller's 503 comes at once."""
    assert sleeps_before_giving_up(_ReachableFirstSessionManager(), monkeypatch) == []


def test_upstream_celerys_table_check_still_retries_an_unreachable_database(monkeypatch: pytest.MonkeyPatch) -> None:
    """Celery's own SessionManager.prepare_models tries create_all 11 times, as for a race between creators."""
    sleeps = sleeps_before_giving_up(session.SessionManager(), monkeypatch)
    assert len(sleeps) == 10, (
        "upstream fixed Celery's SessionManager.prepare_models: an unreachable database no longer costs "
        f"11 tries of create_all (sleeps between them: {sleeps}): remove app/fixes/database_results.py "
        "(docs/upstream.md)"
    )
