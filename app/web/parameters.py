"""The body of ``POST /task/``: its size, its JSON, and the sample task's parameters in it."""

from __future__ import annotations

import json
from typing import Any

from flask import abort, current_app, request


def sample_task_parameters() -> dict[str, Any]:
    """The keyword arguments a POST body asks of the sample task: none, or `seconds`.

    Anything else is refused before any work is queued: 413 past MAX_CONTENT_LENGTH
    (Flask, when the body is read), 415 for another content type, 400 for the rest,
    naming the parameter at fault.
    """
    body = _json_object()
    if unknown := sorted(set(body) - {"seconds"}):
        abort(400, description=f"Unknown parameters: {', '.join(unknown)}; the sample task takes only seconds.")
    if "seconds" not in body:
        return {}
    seconds, limit = body["seconds"], current_app.config["SAMPLE_TASK_MAX_SECONDS"]
    # bool is an int in Python, but `true` seconds is a mistake.
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 <= seconds <= limit:
        abort(400, description=f"Parameter seconds: expected a number from 0 to {limit}.")
    return {"seconds": seconds}


def _json_object() -> dict[str, Any]:
    """The body as a JSON object; no body at all reads as an empty one."""
    data = request.get_data()
    # Werkzeug cuts a body sent without Content-Length (chunked) at the limit, silently:
    # whatever follows the cut makes it too large.
    cut_at_limit = request.content_length is None and len(data) >= current_app.config["MAX_CONTENT_LENGTH"]
    if cut_at_limit and request.environ["wsgi.input"].read(1):
        abort(413)
    if not data:
        return {}
    if not request.is_json:
        abort(415, description="Send parameters as application/json.")
    try:
        body = json.loads(data, parse_constant=_refuse)
    except (ValueError, RecursionError):  # RecursionError: "[[[[..." nested past Python's limit
        abort(400, description="The body is not valid JSON.")
    if not isinstance(body, dict):
        abort(400, description="The body must be a JSON object.")
    return body


def _refuse(constant: str) -> float:
    """NaN and Infinity are not JSON, though Python's parser takes them."""
    raise ValueError(constant)
