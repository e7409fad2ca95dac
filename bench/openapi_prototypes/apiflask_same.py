"""apiflask_app.py made to answer as today: today's body reading before the library's, which reads it again.

json_object() (task_api.py) gives 413 for a cut chunked body, 415, and 400 for what is
not JSON (RecursionError included) before APIFlask's ``input()`` runs; the app's JSON
reads an empty body as ``{}`` and an integral ``7.0`` as the integer 7, as task_api.py's
own parsing does.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Flask, current_app, request
from flask.json.provider import DefaultJSONProvider

from app.web.contract import _number, _refuse, json_object
from bench.openapi_prototypes import apiflask_app


class TodaysJson(DefaultJSONProvider):
    """Flask's JSON, reading bodies as task_api.py does."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return json.loads(s or "{}", parse_float=_number, parse_constant=_refuse, **kwargs)


def _read_as_today() -> None:
    if request.method == "POST" and hasattr(current_app.view_functions.get(request.endpoint or ""), "parameters"):
        json_object()


def create_app() -> Flask:
    """apiflask_app's, reading a task's body as today's does first."""
    flask_app = apiflask_app.create_app()
    flask_app.json = TodaysJson(flask_app)
    flask_app.before_request(_read_as_today)
    return flask_app
