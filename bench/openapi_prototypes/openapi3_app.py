"""expose() on flask-openapi3 4.3: a view's ``body`` annotation is the model it validates and describes."""

from __future__ import annotations

from functools import partial
from typing import Any

from celery import Task
from flask import Flask, jsonify
from flask.wrappers import Response
from flask_openapi3 import APIBlueprint, OpenAPI  # type: ignore[import-not-found]  # only in the bench's own venv
from pydantic import BaseModel, ValidationError

from app.tasks import sample_task
from app.web.task_api import accept
from bench.openapi_prototypes import built_as, render_invoice, serve_spec
from bench.openapi_prototypes.shared import described
from bench.openapi_prototypes.signature import model_of


def expose(bp: APIBlueprint, rule: str, task: Task) -> None:
    """Serve ``POST rule`` on ``bp``: the library checks the body; start ``task`` with it."""

    def start(body: BaseModel) -> tuple[dict[str, Any], int, dict[str, str]]:
        return accept(task, kwargs := body.model_dump(exclude_unset=True), kwargs)  # the key's fingerprint too

    start.__annotations__ = {"body": model_of(task)}  # what the library reads the model from
    start.__name__ = endpoint = f"start_{task.name.rsplit('.', 1)[-1]}"  # named, as Flask-Limiter needs
    start.parameters = start.__annotations__["body"]  # type: ignore[attr-defined]  # a task start, for limits.py
    bp.post(rule, endpoint=endpoint, strict_slashes=False)(start)


def as_today(error: ValidationError) -> Response:
    """The library's validation error as app/web/contract.py words a 400."""
    problems = [f"{'.'.join(map(str, problem['loc']))}: {problem['msg']}" for problem in error.errors()]
    message = "Parameter " + "; parameter ".join(problems) + "."
    response = jsonify({"error": {"code": 400, "name": "Bad Request", "message": message}})
    response.status_code = 400
    return response


def create_app() -> Flask:
    """Today's app as an OpenAPI app, its task POSTs on an APIBlueprint."""
    with built_as(partial(OpenAPI, doc_ui=False, validation_error_status=400, validation_error_callback=as_today)):
        from app import create_app as create

        flask_app: Any = create()
    bp = APIBlueprint("task_api", __name__)
    with flask_app.app_context():  # the library describes a view as it is declared: the sample's maximum is config
        expose(bp, "/task/", sample_task)
        expose(bp, "/invoices/", render_invoice)
    flask_app.register_api(bp)
    serve_spec(flask_app, lambda: described(flask_app.api_doc))
    return flask_app  # type: ignore[no-any-return]
