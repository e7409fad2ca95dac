"""expose() on flask-smorest 0.47: a marshmallow schema per task, written beside its signature (no pydantic).

marshmallow cannot read a task's signature: each task's parameters are declared twice,
and the sample's configured maximum is checked by hand and not described.
"""

from __future__ import annotations

from typing import Any

from celery import Task
from flask import Flask, current_app
from flask_smorest import Api, Blueprint  # type: ignore[import-not-found]  # only in the bench's own venv
from marshmallow import Schema, ValidationError, fields, validate, validates  # type: ignore[import-not-found]  # only in the bench's own venv
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from app.tasks import sample_task
from app.web.contract import http_error_as_json
from app.web.task_api import accept
from bench.openapi_prototypes import built_as, render_invoice, serve_spec
from bench.openapi_prototypes.shared import described


class SampleTask(Schema):  # type: ignore[misc]
    """sample_task's parameters, again."""

    seconds = fields.Float(allow_none=True, validate=validate.Range(min=0))

    @validates("seconds")  # type: ignore[untyped-decorator]
    def _at_most_the_configured_maximum(self, value: float | None, **kwargs: Any) -> None:
        if value is not None and value > (limit := current_app.config["SAMPLE_TASK_MAX_SECONDS"]):
            raise ValidationError(f"expected a number from 0 to {limit}")


class RenderInvoice(Schema):  # type: ignore[misc]
    """render_invoice's parameters, again."""

    invoice_id = fields.Integer(required=True, strict=True)
    amount_cents = fields.Integer(required=True, strict=True, validate=validate.Range(min=0))


def expose(bp: Blueprint, rule: str, task: Task, schema: type[Schema]) -> None:
    """Serve ``POST rule`` on ``bp``: the library checks the body against ``schema``; start ``task`` with it."""

    def start(kwargs: dict[str, Any]) -> tuple[dict[str, Any], int, dict[str, str]]:
        return accept(task, kwargs, kwargs)  # the key's fingerprint too

    start.__name__ = endpoint = f"start_{task.name.rsplit('.', 1)[-1]}"  # named, as Flask-Limiter needs
    start.parameters = schema  # type: ignore[attr-defined]  # a task start, for limits.py
    decorated = bp.arguments(schema, error_status_code=400)(start)
    bp.route(rule, methods=["POST"], endpoint=endpoint, strict_slashes=False)(decorated)


def as_today(error: HTTPException) -> Response:
    """Every error as app/web/contract.py words it, the library's validation errors naming each parameter."""
    messages = getattr(error, "data", {}).get("messages", {}).get("json")
    if isinstance(messages, dict):  # else a list: the body as a whole (not JSON), worded by webargs
        problems = [f"{name}: {' '.join(text).rstrip('.')}" for name, text in messages.items()]
        error.description = "Parameter " + "; parameter ".join(problems) + "."
    elif messages:
        error.description = " ".join(messages)
    return http_error_as_json(error)


def create_app() -> Flask:
    """Today's app with an Api, its task POSTs on a flask-smorest Blueprint."""
    with built_as(Flask):
        from app import create_app as create

        flask_app = create({"API_TITLE": "bench", "API_VERSION": "1.0", "OPENAPI_VERSION": "3.1.0"})
    api = Api(flask_app)
    flask_app.register_error_handler(HTTPException, as_today)  # after Api(), whose handler it replaces
    bp = Blueprint("task_api", __name__)
    expose(bp, "/task/", sample_task, SampleTask)
    expose(bp, "/invoices/", render_invoice, RenderInvoice)
    api.register_blueprint(bp)
    serve_spec(flask_app, lambda: described(api.spec.to_dict()))
    return flask_app
