"""``X-Request-ID``: one id per request, from the client or made here, that follows its tasks.

A valid incoming id (1 to 128 letters, digits, ``.``, ``_``, ``-``) is kept, anything
else replaced (never echoed); every response carries it. Each task published while
handling the request, or by a task running for it, takes it in its message headers, so
the worker knows it too; app/observability/logs.py puts it on every log line of both.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from celery import current_task
from celery.signals import before_task_publish
from flask import Flask, Response, has_request_context, request

HEADER = "X-Request-ID"
MESSAGE_HEADER = "request_id"
ENVIRON_KEY = "flask_celery_factory.request_id"
_VALID = re.compile(r"[A-Za-z0-9._-]{1,128}")


def init_app(app: Flask) -> None:
    """Give each of `app`'s requests an id and send it back."""
    app.before_request(_take_or_make)
    app.after_request(_send_back)


def current_request_id() -> str | None:
    """The id the running task was started for, else the one of the request being handled here."""
    request_id: str | None = None
    if (task := current_task) and task.request.id:
        request_id = getattr(task.request, MESSAGE_HEADER, None)
    # Kept in the request's environ, not in `g`: a task run eagerly in the request pushes an
    # app context of its own, with a `g` of its own, and sent no message to carry it.
    if request_id is None and has_request_context():
        request_id = request.environ.get(ENVIRON_KEY)
    return request_id


def _take_or_make() -> None:
    incoming = request.headers.get(HEADER, "")
    request.environ[ENVIRON_KEY] = incoming if _VALID.fullmatch(incoming) else uuid.uuid4().hex


def _send_back(response: Response) -> Response:
    response.headers[HEADER] = request.environ[ENVIRON_KEY]
    return response


@before_task_publish.connect  # type: ignore[untyped-decorator]
def _send_with_task(headers: dict[str, Any], **_: Any) -> None:
    """Publishing a task (from a view, or from a task): its message carries the request's id."""
    if (request_id := current_request_id()) is not None:
        headers.setdefault(MESSAGE_HEADER, request_id)
