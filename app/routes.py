"""The task API and its page: `POST /task/` starts the sample task; `GET`, `DELETE /task/<id>` serve every task.

Expose a task of your own with two lines: its import and ``expose(bp, "/invoices/", render_invoice)``.
"""

from __future__ import annotations

from typing import Any

from celery import states
from celery.backends.base import Backend, BaseKeyValueStoreBackend
from celery.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded
from flask import Blueprint, abort, current_app, render_template

from app.observability.logs import current_client
from app.service import NAME
from app.tasking import PROGRESS, ClientError
from app.tasks import sample_task
from app.web.auth import owned_by
from app.web.dependencies import dependency, mask_secrets
from app.web.task_api import expose

bp = Blueprint("tasks", __name__)
expose(bp, "/task/", sample_task)


@bp.get("/")
def index() -> str:
    """A page that starts the sample task, follows its progress and can cancel it, through this API.

    With authentication on it asks for a token, which its script sends as the API's clients do.
    """
    config = current_app.config
    return render_template(
        "index.html",
        service_name=NAME,
        seconds=config["SAMPLE_TASK_SECONDS"],
        max_seconds=config["SAMPLE_TASK_MAX_SECONDS"],
        needs_token=config["AUTH_TOKENS"] is not None,
    )


@bp.get("/task/<uuid:task_id>")
def task_status(task_id: Any) -> dict[str, Any]:
    """Answer a submitted task's state, and its result or error once it has one."""
    celery_app = current_app.extensions["celery"]  # this app's own, not the process's default: two apps may coexist
    task_id = str(task_id)
    with dependency("result backend"):
        meta = _submitted_meta(celery_app.backend, task_id)
    state, value = meta["status"], meta["result"]
    body: dict[str, Any] = {"task_id": task_id, "state": state}
    if state == PROGRESS and isinstance(value, dict) and "progress" in value:  # else a meta of the task's own
        body["progress"] = value["progress"]
    elif state == states.SUCCESS:
        body["result"] = value  # as JSON: web/contract.py's JSONProvider
    elif state in (states.FAILURE, states.RETRY):
        message = mask_secrets(_describe_failure(value), celery_app)  # a URL in an error message
        body["error"] = {"type": type(value).__name__, "message": message}
        if state == states.RETRY:
            body["attempt"] = meta["retries"] + 1  # the one that failed; the next follows its backoff
    return body


@bp.delete("/task/<uuid:task_id>")
def cancel_task(task_id: Any) -> tuple[dict[str, Any], int]:
    """Cancel a queued or running task: 202; a finished one: 409; asking again answers the same.

    REVOKED is stored first, by a write that never replaces a final state
    (app/fixes/final_states.py): the answer is the state that stays, even when the task
    ends in the same instant. A worker drops the message of a task stored as final, so a
    queued task never runs, even if every worker restarts before its message is delivered;
    a running task stops at its next checkpoint() (app/tasks.py). Nothing is killed: a
    pool process may be running another task by the time a signal reaches it.
    """
    celery_app = current_app.extensions["celery"]
    task_id = str(task_id)
    with dependency("result backend"):
        if _submitted_meta(celery_app.backend, task_id)["status"] not in states.READY_STATES:
            celery_app.backend.mark_as_revoked(task_id, "cancelled")
        state = _submitted_meta(celery_app.backend, task_id)["status"]
    if state != states.REVOKED:
        abort(409, description=f"The task has already finished ({state}); there is nothing to cancel.")
    with dependency("broker"):
        celery_app.control.revoke(task_id)  # workers drop its message as it arrives
    return {"task_id": task_id, "state": states.REVOKED}, 202


def _submitted_meta(backend: Backend, task_id: str) -> dict[str, Any]:
    """The task's stored state and result, or 404 for an id never submitted.

    Celery says PENDING for any id, so every message sent records its id (celery_app.FlaskTask). A key-value backend
    (Redis) tells both in one read: no record, never submitted (or its result expired).
    Another client's task answers the same (app/web/auth.py).
    """
    client = current_client()
    if client is None or owned_by(backend, task_id, client):  # another client's task is none of its business
        if isinstance(backend, BaseKeyValueStoreBackend):
            if record := backend.get(backend.get_key_for_task(task_id)):
                meta: dict[str, Any] = backend.decode_result(record)
                return meta
        elif backend.task_result_exists(task_id):
            meta = backend.get_task_meta(task_id)
            return meta
    abort(404, description=f"No task with id {task_id} was submitted (or its result expired).")


def _describe_failure(error: object) -> str:
    """What a client may read of a failure: its own error's text (ClientError), else what happened, never why.

    An exception's text may hold anything (a query, a path, a host): it stays in the
    worker's log line, with the task's id and request id.
    """
    if isinstance(error, ClientError):
        return str(error)
    # Celery's time-limit errors print as "TimeLimitExceeded(330,)": say what happened.
    if isinstance(error, TimeLimitExceeded):
        limit = f" ({error.args[0]} s)" if error.args else ""
        return f"The task was killed at its hard time limit{limit}."
    if isinstance(error, SoftTimeLimitExceeded):
        return "The task was interrupted at its soft time limit."
    return "The task failed; the service's logs say why, under its task id."
