"""Celery's database result backend, failing once, not 11 times, while the database is unreachable.

A backend creates its tables on its first call: ``SessionManager.prepare_models``
(celery/backends/database/session.py) runs ``create_all`` and, on any ``DatabaseError``,
tries again up to 10 times with growing sleeps, for processes that create the tables at
the same moment. A database that refuses or never answers raises such an error too, so
until one call had succeeded, each call of the process took 0.2-4.3 s with the database
refusing, and 11 connect timeouts (22 s and more) with it stalled, before its 503.
Here that first call connects once before: an unreachable database fails it at once (or
after one connect timeout), and Celery's retries are left to the race they are for.
It also moves a task's state only forward (final_states.py): Celery locks the task's row
before it writes but skips the write over a SUCCESS only. CELERY_DEFAULTS selects this class for
every ``db+`` URL.
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
