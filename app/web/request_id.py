"""``X-Request-ID``: one id per request, from the client or made here, that follows its tasks.

A valid incoming id (1 to 128 letters, digits, ``.``, ``_``, ``-``) is kept, anything
else replaced (never echoed); every response carries it. Each task published while
handling the request, or by a task running for it, takes it in its message headers, so
the worker knows it too; app/logs.py puts it on every log line of both. The name of the
client that sent the request (app/web/auth.py) follows its tasks the same way.
"""

from __future__ import annotations

import re
import uuid
from collections import OrderedDict
from typing import Any

from celery import current_task
from celery.signals import before_task_publish
from flask import Flask, Response, has_request_context, request

HEADER = "X-Request-ID"
MESSAGE_HEADER = "request_id"
ENVIRON_KEY = "flask_celery_factory.request_id"
CLIENT_HEADER = "client"
CLIENT_ENVIRON_KEY = "flask_celery_factory.client"
# What a request hands to the tasks it starts: message header -> where the request keeps it.
CARRIED = {MESSAGE_HEADER: ENVIRON_KEY, CLIENT_HEADER: CLIENT_ENVIRON_KEY}
_VALID = re.compile(r"[A-Za-z0-9._-]{1,128}")
# What the tasks a worker received last carried, by task id: a bounded memory.
RECEIVED_KEPT = 10_000
_RECEIVED: OrderedDict[str, dict[str, str]] = OrderedDict()


def init_app(app: Flask) -> None:
    """Give each of `app`'s requests an id and send it back."""
    app.before_request(_take_or_make)
    app.after_request(_send_back)


def current_request_id() -> str | None:
    """The id the running task was started for, else the one of the request being handled here."""
    return carried(MESSAGE_HEADER)


def current_client() -> str | None:
    """The client the running task was started for, else the one of this request; None without authentication."""
    return carried(CLIENT_HEADER)


def carried(header: str) -> str | None:
    """What the running task's message carries as ``header``, else what this request keeps for it."""
    value: str | None = None
    if (task := current_task) and task.request.id:
        value = getattr(task.request, header, None)
    # Kept in the request's environ, not in `g`: a task run eagerly in the request pushes an
    # app context of its own, with a `g` of its own, and sent no message to carry it.
    if value is None and has_request_context():
        value = request.environ.get(CARRIED[header])
    return value


def remember_for_task(task_id: str, headers: dict[str, Any]) -> None:
    """As a worker receives a task's message: its own log lines about the task, outside it, name what it carries."""
    if values := {header: headers[header] for header in CARRIED if headers.get(header) is not None}:
        _RECEIVED[task_id] = values
        while len(_RECEIVED) > RECEIVED_KEPT:
            _RECEIVED.popitem(last=False)


def for_task(task_id: str, header: str = MESSAGE_HEADER) -> str | None:
    """What a task this process received carried as ``header`` (its request id by default), if anything."""
    return _RECEIVED.get(task_id, {}).get(header)


def _take_or_make() -> None:
    incoming = request.headers.get(HEADER, "")
    request.environ[ENVIRON_KEY] = incoming if _VALID.fullmatch(incoming) else uuid.uuid4().hex


def _send_back(response: Response) -> Response:
    response.headers[HEADER] = request.environ[ENVIRON_KEY]
    return response


@before_task_publish.connect  # type: ignore[untyped-decorator]
def _send_with_task(headers: dict[str, Any], **_: Any) -> None:
    """Publishing a task (from a view, or from a task): its message carries the request's id and client."""
    for header in CARRIED:
        if (value := carried(header)) is not None:
            headers.setdefault(header, value)
