"""One logging setup for the web app and the worker: every line inside a task names it."""

from __future__ import annotations

import logging

from celery import current_task

FORMAT = "%(asctime)s %(levelname)s %(processName)s %(name)s [%(task_id)s] %(message)s"


class TaskIdFilter(logging.Filter):
    """Adds ``task_id``: the running Celery task's id, or ``-`` outside tasks."""

    def filter(self, record: logging.LogRecord) -> bool:
        task = current_task
        record.task_id = task.request.id if task and task.request.id else "-"
        return True


def configure_logging(level: str = "INFO") -> None:
    """Log to stderr in FORMAT, unless the process has set up logging already.

    Like ``logging.basicConfig``, it leaves an existing setup alone (gunicorn's
    ``--log-config``, pytest's capture), so calling it from every ``create_app()`` is safe.
    """
    root = logging.getLogger()
    if root.handlers:
        return
    handler = logging.StreamHandler()
    handler.addFilter(TaskIdFilter())
    handler.setFormatter(logging.Formatter(FORMAT))
    root.addHandler(handler)
    root.setLevel(level)
