"""The task API: ``POST /task/`` starts the sample task, ``GET /task/<id>`` reports on it."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from celery import Celery, states
from celery.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded
from flask import Blueprint, abort, current_app, request, url_for
from kombu.exceptions import OperationalError

from app.tasks import sample_task, submit
from app.web.dependencies import backend_errors, dependency, mask_secrets

bp = Blueprint("tasks", __name__, url_prefix="/task")


def _celery() -> Celery:
    # This Flask app's own Celery app, not the process-wide default: two apps may coexist.
    celery_app: Celery = current_app.extensions["celery"]
    return celery_app


@bp.post("/", strict_slashes=False)  # `POST /task` too: a redirect would be an HTML page
def start_task() -> tuple[dict[str, Any], int, dict[str, str]]:
    """Queue the sample task; answer its id and where to follow it."""
    _reject_parameters()
    celery_app = _celery()
    # submit() writes to the backend first: if that fails, nothing is published.
    with (
        dependency("result backend", backend_errors(celery_app), celery_app),
        dependency("broker", (OperationalError,), celery_app),
    ):
        task_id = submit(celery_app.tasks[sample_task.name])
    location = url_for(".task_status", task_id=task_id)
    return {"task_id": task_id, "state": "PENDING"}, 202, {"Location": location}


def _reject_parameters() -> None:
    """Accept no body or an empty JSON object: the sample task takes no parameters.

    Anything else is refused before any work is queued: 413 past MAX_CONTENT_LENGTH
    (Flask, when the body is read), 415 for another content type, 400 for the rest.
    """
    data = request.get_data()
    # Werkzeug cuts a body sent without Content-Length (chunked) at the limit, silently:
    # whatever follows the cut makes it too large.
    cut_at_limit = request.content_length is None and len(data) >= current_app.config["MAX_CONTENT_LENGTH"]
    if cut_at_limit and request.environ["wsgi.input"].read(1):
        abort(413)
    if not data:
        return
    if not request.is_json:
        abort(415, description="Send parameters as application/json.")
    try:
        body = json.loads(data)
    except (ValueError, RecursionError):  # RecursionError: "[[[[..." nested past Python's limit
        abort(400, description="The body is not valid JSON.")
    if not isinstance(body, dict):
        abort(400, description="The body must be a JSON object.")
    if body:
        abort(400, description=f"Unknown parameters: {', '.join(sorted(body))}; the sample task takes none.")


@bp.get("/<uuid:task_id>")
def task_status(task_id: Any) -> dict[str, Any]:
    """Answer a submitted task's state, and its result or error once it has one."""
    celery_app = _celery()
    result = celery_app.AsyncResult(str(task_id))
    with dependency("result backend", backend_errors(celery_app), celery_app):
        if not result.exists():
            abort(404, description=f"No task with id {task_id} was submitted (or its result expired).")
        state = result.state
        value = result.result if state in states.READY_STATES else None  # read with the state
    body: dict[str, Any] = {"task_id": result.id, "state": state}
    if state == states.SUCCESS:
        body["result"] = value.isoformat() if isinstance(value, datetime) else value
    elif state == states.FAILURE:
        message = mask_secrets(_describe_failure(value), celery_app)  # a URL in an error message
        body["error"] = {"type": type(value).__name__, "message": message}
    return body


def _describe_failure(error: object) -> str:
    # Celery's time-limit errors print as "TimeLimitExceeded(330,)": say what happened.
    if isinstance(error, TimeLimitExceeded):
        limit = f" ({error.args[0]} s)" if error.args else ""
        return f"The task was killed at its hard time limit{limit}."
    if isinstance(error, SoftTimeLimitExceeded):
        return "The task was interrupted at its soft time limit."
    return str(error)
