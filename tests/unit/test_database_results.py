"""The database result backend that fails at once on an unreachable database (app/fixes/database_results.py).

That failure itself: test_dependencies.py (refused) and the integration tier (stalled). Here:
the rest stays as Celery's own backend does it.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from celery import Celery
from flask import Flask

from app import create_app
from app.fixes.database_results import ReachableFirstDatabaseBackend
from tests.unit.conftest import IN_MEMORY_CONFIG, WriteConfig

ENGINES: list[Any] = []


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
