"""The task API: ``POST /task/`` starts the sample task, ``GET /task/<id>`` reports on it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from celery import Celery
from flask import Blueprint, abort, current_app, url_for

from app.tasks import sample_task, submit

bp = Blueprint("tasks", __name__, url_prefix="/task")


def _celery() -> Celery:
    # This Flask app's own Celery app, not the process-wide default: two apps may coexist.
    celery_app: Celery = current_app.extensions["celery"]
    return celery_app


@bp.post("/")
def start_task() -> tuple[dict[str, Any], int, dict[str, str]]:
    """Queue the sample task; answer its id and where to follow it."""
    task_id = submit(_celery().tasks[sample_task.name])
    location = url_for(".task_status", task_id=task_id)
    return {"task_id": task_id, "state": "PENDING"}, 202, {"Location": location}


@bp.get("/<uuid:task_id>")
def task_status(task_id: Any) -> dict[str, Any]:
    """Answer a submitted task's state, and its result or error once it has one."""
    result = _celery().AsyncResult(str(task_id))
    if not result.exists():
        abort(404, description=f"No task with id {task_id} was submitted (or its result expired).")
    body: dict[str, Any] = {"task_id": result.id, "state": result.state}
    if result.successful():
        value = result.result
        body["result"] = value.isoformat() if isinstance(value, datetime) else value
    elif result.failed():
        error = result.result
        body["error"] = {"type": type(error).__name__, "message": str(error)}
    return body
