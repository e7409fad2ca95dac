"""What a client may rely on: every error is JSON, and ``GET /openapi.json`` describes every route.

app/web/openapi.yaml describes the routes written by hand, its title the service's name
(app/service.py); each task exposed with ``expose()`` (task_api.py) is described from its
signature, with the operation that ``x-start-task`` in the YAML gives every such POST.
"""

from __future__ import annotations

import copy
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from flask import Blueprint, current_app, json
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from app.service import NAME
from app.web.task_api import parameters_of

bp = Blueprint("contract", __name__)


def http_error_as_json(error: HTTPException) -> Response:
    """Any HTTP error as JSON, an unhandled exception's 500 included: its status and headers (``Allow`` on 405) kept."""
    response = error.get_response()
    response.data = json.dumps({"error": {"code": error.code, "name": error.name, "message": error.description}})
    response.content_type = "application/json"
    return response


@cache
def _written() -> dict[str, Any]:
    spec: dict[str, Any] = yaml.safe_load(Path(__file__).with_name("openapi.yaml").read_text(encoding="utf-8"))
    return spec


@bp.get("/openapi.json")
def openapi() -> dict[str, Any]:
    """The OpenAPI 3.1 description of this app's API, each exposed task's parameters as this app checks them."""
    spec = copy.deepcopy(_written())
    spec["info"]["title"] = NAME
    start = spec.pop("x-start-task")
    for rule in current_app.url_map.iter_rules():
        task = getattr(current_app.view_functions[rule.endpoint], "task", None)
        if task is None:
            continue
        parameters = parameters_of(task)
        schema = parameters.model_json_schema(ref_template="#/components/schemas/{model}")
        spec["components"]["schemas"].update(schema.pop("$defs", {}))
        operation = copy.deepcopy(start)
        operation.update(summary=f"Start {parameters.__name__}", operationId=rule.endpoint)
        body = operation["requestBody"]
        body["required"] = "required" in schema  # without a body, a task's required parameters are missing: 400
        body["content"]["application/json"]["schema"] = schema
        spec["paths"].setdefault(rule.rule, {})["post"] = operation
    return spec
