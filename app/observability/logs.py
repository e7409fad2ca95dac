"""Every log line, web and worker alike, names its request and its task.

The request id (app/web/request_id.py takes or makes it) follows the request into every task
it starts, and every task those start, in the message headers. Celery's TaskFormatter puts
the running task's id on a line; this one adds the request id. Lines the worker logs about a
task outside it ("received") name the task in their ``data``: they get the ids its message carried.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import current_task
from celery.app.log import TaskFormatter
from celery.signals import after_setup_task_logger, before_task_publish
from celery.utils.functional import LRUCache
from celery.worker.request import Request
from flask import has_request_context, request

FORMAT = "%(asctime)s %(levelname)s %(processName)s %(name)s [%(request_id)s] [%(task_id)s] %(message)s"
MESSAGE_HEADER = "request_id"
# Where a web request keeps its id: in the environ, not in `g`, since a task run eagerly in the
# request pushes an app context of its own, with a `g` of its own, and sends no message to carry it.
ENVIRON_KEY = "flask_celery_factory.request_id"
# Request ids of the tasks this worker received last, by task id: a bounded memory.
RECEIVED_KEPT = 10_000
_received: LRUCache = LRUCache(limit=RECEIVED_KEPT)


def current_request_id() -> str | None:
    """The id the running task was started for, else the one of the request being handled here."""
    request_id: str | None = None
    if (task := current_task) and task.request.id:
        request_id = getattr(task.request, MESSAGE_HEADER, None)
    if request_id is None and has_request_context():
        request_id = request.environ.get(ENVIRON_KEY)
    return request_id


@before_task_publish.connect  # type: ignore[untyped-decorator]
def _send_with_task(headers: dict[str, Any], **_: Any) -> None:
    """Publishing a task (from a view, or from a task): its message carries the request's id."""
    if (request_id := current_request_id()) is not None:
        headers.setdefault(MESSAGE_HEADER, request_id)


class Formatter(TaskFormatter):  # type: ignore[misc]
    """Celery's TaskFormatter, uncoloured, with the request id; ``-`` where there is no task or request."""

    def __init__(self) -> None:
        super().__init__(FORMAT, use_color=False)

    def format(self, record: logging.LogRecord) -> str:
        data = getattr(record, "data", None)
        if not current_task and isinstance(data, dict) and "id" in data:
            record.task_id, record.request_id = data["id"], _received.get(data["id"], "-")
        else:  # in a task, TaskFormatter replaces this task id with the task's
            record.task_id, record.request_id = "-", current_request_id() or "-"
        return str(super().format(record))


class RequestWithId(Request):  # type: ignore[misc]
    """A worker's request that remembers the request id its message carries, for the worker's lines about it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if (request_id := self._request_dict.get(MESSAGE_HEADER)) is not None:
            _received[self.id] = request_id


def configure_logging(level: str = "INFO") -> None:
    """Log to stderr in FORMAT, unless the process has set up logging already (gunicorn's --log-config, pytest)."""
    handler = logging.StreamHandler()
    handler.setFormatter(Formatter())
    logging.basicConfig(level=level, handlers=[handler])  # which does nothing where the root has a handler


@after_setup_task_logger.connect  # type: ignore[untyped-decorator]
def _format_task_loggers(logger: logging.Logger, **_: Any) -> None:
    """The handler the worker gives ``get_task_logger()``'s loggers writes FORMAT too, not Celery's task format."""
    for handler in logger.handlers:
        if type(handler.formatter) is TaskFormatter:  # Celery's; a logging setup of the user's is left alone
            handler.setFormatter(Formatter())
