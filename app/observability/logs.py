"""Every log line, web and worker alike, names its request, its client and its task.

The request id (app/web/request_id.py takes or makes it) and the client's name (app/web/auth.py)
follow the request into every task it starts, and every task those start, in the message
headers. Celery's TaskFormatter puts the running task's id on a line; this one adds the
others. Lines the worker logs about a task outside it ("received") name the task in their
``data``: they get what its message carried.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from celery import current_task
from celery.app.log import TaskFormatter
from celery.signals import after_setup_task_logger, before_task_publish
from celery.utils.functional import LRUCache
from celery.worker.request import Request
from flask import has_request_context, request

FORMAT = "%(asctime)s %(levelname)s %(processName)s %(name)s [%(request_id)s] [%(client)s] [%(task_id)s] %(message)s"
# What a request hands to the tasks it starts: message header -> where the request keeps it,
# in the environ, not in `g`, since a task run eagerly in the request pushes an app context
# of its own, with a `g` of its own, and sends no message to carry it.
CARRIED = {"request_id": "flask_celery_factory.request_id", "client": "flask_celery_factory.client"}
ENVIRON_KEY, CLIENT_ENVIRON_KEY = CARRIED["request_id"], CARRIED["client"]
# What the tasks this worker received last carried, by task id: a bounded memory.
RECEIVED_KEPT = 10_000
_received: LRUCache = LRUCache(limit=RECEIVED_KEPT)


def carried(header: str) -> str | None:
    """What the running task's message carries as ``header``, else what the request being handled here keeps."""
    value: str | None = None
    if (task := current_task) and task.request.id:
        value = getattr(task.request, header, None)
    if value is None and has_request_context():
        value = request.environ.get(CARRIED[header])
    return value


current_request_id = functools.partial(carried, "request_id")
current_client = functools.partial(carried, "client")  # None without authentication


@before_task_publish.connect  # type: ignore[untyped-decorator]
def _send_with_task(headers: dict[str, Any], **_: Any) -> None:
    """Publishing a task (from a view, or from a task): its message carries the request's id and client."""
    for header in CARRIED:
        if (value := carried(header)) is not None:
            headers.setdefault(header, value)


class Formatter(TaskFormatter):  # type: ignore[misc]
    """Celery's TaskFormatter, uncoloured, with the request id; ``-`` where there is no task or request."""

    def __init__(self) -> None:
        super().__init__(FORMAT, use_color=False)

    def format(self, record: logging.LogRecord) -> str:
        data = getattr(record, "data", None)
        if not current_task and isinstance(data, dict) and "id" in data:
            record.task_id, values = data["id"], _received.get(data["id"], {})
        else:  # in a task, TaskFormatter replaces this task id with the task's
            record.task_id, values = "-", {header: carried(header) for header in CARRIED}
        record.request_id, record.client = values.get("request_id") or "-", values.get("client") or "-"
        return str(super().format(record))


class RequestWithId(Request):  # type: ignore[misc]
    """A worker's request that remembers what its message carries, for the worker's lines about it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if values := {header: self._request_dict[header] for header in CARRIED if self._request_dict.get(header)}:
            _received[self.id] = values


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
