"""Celery's database result backend, failing once, not 11 times, while the database is unreachable.

A backend creates its tables on its first call, and Celery's ``SessionManager.prepare_models``
retries that ``create_all`` 10 times with growing sleeps on any ``DatabaseError``, for
processes that create the tables at the same moment. An unreachable database raises such
an error too, so each call of a process held its 503 for seconds (minutes with the
database stalled) until one call had succeeded. Here that first call connects once before:
an unreachable database fails it at once (or after one connect timeout), and Celery's
retries are left to the race they are for. It also moves a task's state only forward
(final_states.py): Celery locks the task's row before it writes but skips the write over
a SUCCESS only. CELERY_DEFAULTS selects this class for every ``db+`` URL. Measurements,
reproduction and proposed Celery change: docs/upstream.md.
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
            with engine.connect():
                pass
        super().prepare_models(engine)


class ReachableFirstDatabaseBackend(DatabaseBackend):  # type: ignore[misc]
    """Celery's database backend whose first call fails at once when the database is unreachable.

    And whose task states only move forward.
    """

    session_manager: SessionManager

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.session_manager = _ReachableFirstSessionManager(engine_callback=self.session_manager.engine_callback)

    def _update_result(self, task: Any, result: Any, state: str, **kwargs: Any) -> None:
        """Celery's write of a task's row (locked, if it exists), unless its state is to stay."""
        if replaces(task.status, state):
            super()._update_result(task, result, state, **kwargs)
