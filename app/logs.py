"""One logging setup for the web app and the worker: every line names its request and its task."""

from __future__ import annotations

import logging

from celery import current_task

from app.web.request_id import CLIENT_HEADER, current_client, current_request_id, for_task

FORMAT = "%(asctime)s %(levelname)s %(processName)s %(name)s [%(request_id)s] [%(client)s] [%(task_id)s] %(message)s"


class ContextFilter(logging.Filter):
    """Adds ``request_id`` (X-Request-ID, web and worker alike), ``client``, ``task_id``: ``-`` where none."""

    def filter(self, record: logging.LogRecord) -> bool:
        task = current_task
        task_id = task.request.id if task and task.request.id else None
        request_id, client = current_request_id(), current_client()
        # Celery's worker logs about a task outside it too ("received"), giving its id as `data`.
        if task_id is None and isinstance(data := getattr(record, "data", None), dict) and "id" in data:
            task_id = data["id"]
            request_id, client = for_task(task_id), for_task(task_id, CLIENT_HEADER)
        record.task_id, record.request_id, record.client = task_id or "-", request_id or "-", client or "-"
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
    handler.addFilter(ContextFilter())
    handler.setFormatter(logging.Formatter(FORMAT))
    root.addHandler(handler)
    root.setLevel(level)
