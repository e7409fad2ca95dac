"""What an endpoint served by any of the libraries still takes from today's code: the start, the YAML's routes.

``accept()`` is task_api.start() after its validation, unchanged; ``described()`` puts the
library's description of each task's POST into app/web/openapi.yaml, with the header and
the answers that ``x-start-task`` gives every such POST (no library infers those).
"""

from __future__ import annotations

import copy
from typing import Any

from celery import Task, uuid
from flask import current_app, request, url_for
from kombu.exceptions import OperationalError

from app.observability.metrics import PUBLISH_SECONDS
from app.service import NAME
from app.tasking import backend_errors
from app.web.contract import _written
from app.web.dependencies import CONFIRM_TIMEOUT, dependency
from app.web.idempotency import parse_key, submit_once
from app.web.limits import unfinished_slot


def accept(task: Task, kwargs: dict[str, Any]) -> tuple[dict[str, Any], int, dict[str, str]]:
    """Queue `task` with the validated `kwargs`: 202, its id and Location (503, 429, Idempotency-Key as today)."""
    celery_app = current_app.extensions["celery"]
    task = celery_app.tasks[task.name]  # this app's, not the process's default app's
    key = parse_key(request.headers["Idempotency-Key"]) if "Idempotency-Key" in request.headers else None

    def send(task_id: str | None = None) -> str:
        task_id = task_id or uuid()
        with unfinished_slot(celery_app, task_id):
            return str(task.apply_async(kwargs=kwargs, task_id=task_id, confirm_timeout=CONFIRM_TIMEOUT).id)

    with (
        dependency("result backend", backend_errors(celery_app.backend), celery_app),
        dependency("broker", (OperationalError,), celery_app),
        PUBLISH_SECONDS.time(),
    ):
        task_id = send() if key is None else submit_once(celery_app, key, {task.name: kwargs}, send)
    return {"task_id": task_id, "state": "PENDING"}, 202, {"Location": url_for("tasks.task_status", task_id=task_id)}


def described(generated: dict[str, Any]) -> dict[str, Any]:
    """The YAML's routes, and each POST of `generated` (the library's spec) with x-start-task's header and answers."""
    spec = copy.deepcopy(_written())
    spec["info"]["title"] = NAME
    start = spec.pop("x-start-task")
    schemas = generated.get("components", {}).get("schemas", {})
    spec["components"]["schemas"].update(schemas)
    for path, item in generated["paths"].items():
        operation = {**item["post"], "parameters": start["parameters"], "responses": start["responses"]}
        body = operation["requestBody"]
        schema = body["content"]["application/json"]["schema"]
        # Without a body, a task's required parameters are missing: 400. No library says so.
        body["required"] = "required" in schemas.get(schema.get("$ref", "").rsplit("/", 1)[-1], schema)
        spec["paths"].setdefault(path, {})["post"] = operation
    return spec
