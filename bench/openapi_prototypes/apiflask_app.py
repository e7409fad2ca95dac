"""expose() on APIFlask 3.1: its ``input()`` validates the body against the signature's model and describes it."""

from __future__ import annotations

from functools import partial
from typing import Any

from apiflask import APIBlueprint, APIFlask, HTTPError  # type: ignore[import-not-found]  # only in the bench's own venv
from celery import Task
from flask import Flask
from pydantic import BaseModel

from app.tasks import sample_task
from app.web.task_api import accept
from bench.openapi_prototypes import built_as, render_invoice, serve_spec
from bench.openapi_prototypes.shared import described
from bench.openapi_prototypes.signature import model_of


def expose(bp: APIBlueprint, rule: str, task: Task) -> None:
    """Serve ``POST rule`` on ``bp``: the library checks the body; start ``task`` with it."""

    def start(json_data: BaseModel) -> tuple[dict[str, Any], int, dict[str, str]]:
        return accept(task, kwargs := json_data.model_dump(exclude_unset=True), kwargs)  # the key's fingerprint too

    start.__name__ = endpoint = f"start_{task.name.rsplit('.', 1)[-1]}"  # named, as Flask-Limiter needs
    start.parameters = model = model_of(task)  # type: ignore[attr-defined]  # a task start, for limits.py
    bp.post(rule, endpoint=endpoint, strict_slashes=False)(bp.input(model)(start))


def as_today(error: HTTPError) -> tuple[dict[str, Any], int, Any]:
    """The library's validation error (the only HTTPError it raises here) as app/web/contract.py words a 400."""
    problems = [f"{name}: {message}" for name, messages in error.detail["json"].items() for message in messages]
    message = "Parameter " + "; parameter ".join(problems) + "."
    return {"error": {"code": 400, "name": "Bad Request", "message": message}}, 400, error.headers


def create_app() -> Flask:
    """Today's app as an APIFlask, its task POSTs on an APIBlueprint."""
    # Werkzeug's errors keep today's handler (contract.py): APIFlask's drops their description.
    with built_as(partial(APIFlask, json_errors=False, spec_path=None, docs_path=None)):
        from app import create_app as create

        flask_app: Any = create({"VALIDATION_ERROR_STATUS_CODE": 400})
    flask_app.error_callback = as_today  # its error_processor() would take Werkzeug's errors too
    bp = APIBlueprint("task_api", __name__)
    expose(bp, "/task/", sample_task)
    expose(bp, "/invoices/", render_invoice)
    flask_app.register_blueprint(bp)
    serve_spec(flask_app, lambda: described(flask_app.spec))
    return flask_app  # type: ignore[no-any-return]
