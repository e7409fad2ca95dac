"""``X-Request-ID``: one id per request, from the client or made here, sent back on every response.

A valid incoming id (1 to 128 letters, digits, ``.``, ``_``, ``-``) is kept, anything else
replaced (never echoed). app/observability/logs.py carries it into the request's tasks and
puts it on every log line of both, with the client's name (app/web/auth.py).
"""

from __future__ import annotations

import re
import uuid

from flask import Flask, Response, request

from app.observability.logs import ENVIRON_KEY

HEADER = "X-Request-ID"
_VALID = re.compile(r"[A-Za-z0-9._-]{1,128}")


def init_app(app: Flask) -> None:
    """Give each of `app`'s requests an id and send it back."""
    app.before_request(_take_or_make)
    app.after_request(_send_back)


def _take_or_make() -> None:
    incoming = request.headers.get(HEADER, "")
    request.environ[ENVIRON_KEY] = incoming if _VALID.fullmatch(incoming) else uuid.uuid4().hex


def _send_back(response: Response) -> Response:
    response.headers[HEADER] = request.environ[ENVIRON_KEY]
    return response
