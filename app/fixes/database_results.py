"""Celery's database result backend, failing at once while the database is unreachable; states only forward.

Celery retries its first ``create_all`` on any ``DatabaseError``, for processes creating the
tables at once; an unreachable database raises one too. Here the first call connects once
before. Delete once Celery retries only the race (the template's docs/upstream.md).
"""

from __future__ import annotations

from typing import Any

from celery.backends.database import DatabaseBackend
from celery.backends.database.session import SessionManager

from app.fixes.final_states import replaces


class _ReachableFirstSessionManager(SessionManager):  # type: ignore[misc]
    def prepare_models(self, engine: Any) -> None:
        """Connect once, then let Celery create the tables (with its retries) if not done yet."""
        if not self.prepared:
            engine.connect().close()
        super().prepare_models(engine)


class ReachableFirstDatabaseBackend(DatabaseBackend):  # type: ignore[misc]
    """Celery's database backend whose first call fails at once when the database is unreachable."""

    session_manager: SessionManager

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.session_manager = _ReachableFirstSessionManager(engine_callback=self.session_manager.engine_callback)

    def _update_result(self, task: Any, result: Any, state: str, **kwargs: Any) -> None:
        """Celery's write of a task's row (locked, if it exists), unless its state is to stay (final_states.py)."""
        if replaces(task.status, state):
            super()._update_result(task, result, state, **kwargs)
