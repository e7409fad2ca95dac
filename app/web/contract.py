"""What a client may rely on: a body read as a JSON object, JSON answers, ``GET /openapi.json`` describing every route.

app/web/openapi.yaml describes the routes written by hand, its title the service's name
(app/service.py); each task exposed with ``expose()`` (task_api.py) is described from its
signature, with the operation that ``x-start-task`` in the YAML gives every such POST.
"""

from __future__ import annotations

import base64
import copy
import json
from datetime import date, time
from functools import cache
from pathlib import Path
from typing import Any, Literal

import yaml
from flask import Blueprint, abort, current_app, request
from flask.json.provider import DefaultJSONProvider
from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, models_json_schema
from pydantic_core import core_schema
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from app.service import NAME

bp = Blueprint("contract", __name__)


class JSONProvider(DefaultJSONProvider):
    """Flask's JSON, but dates and times in ISO 8601 (not HTTP's format), bytes in base64: a result may hold any."""

    @staticmethod
    def default(value: Any) -> Any:
        if isinstance(value, date | time):
            return value.isoformat()
        if isinstance(value, bytes):
            return base64.b64encode(value).decode()
        return DefaultJSONProvider.default(value)


def http_error_as_json(error: HTTPException) -> Response:
    """Any HTTP error as JSON, an unhandled exception's 500 included: its status and headers (``Allow`` on 405) kept."""
    response = error.get_response()
    body = {"error": {"code": error.code, "name": error.name, "message": error.description}}
    response.data = current_app.json.dumps(body)
    response.content_type = "application/json"
    return response


@cache
def _written() -> dict[str, Any]:
    spec: dict[str, Any] = yaml.safe_load(Path(__file__).with_name("openapi.yaml").read_text(encoding="utf-8"))
    return spec


class _Schema(GenerateJsonSchema):
    """pydantic's JSON Schema, with a pattern for a decimal's text: what it describes is what a POST takes."""

    def get_decimal_pattern(self, schema: core_schema.DecimalSchema) -> str:
        # Python's Decimal takes no exponent of 19 digits (decimal.MAX_EMAX): none is described.
        return self.build_decimal_pattern(schema).replace("[eE][+-]?[0-9]+", "[eE][+-]?[0-9]{1,17}")


@bp.get("/openapi.json")
def openapi() -> dict[str, Any]:
    """The OpenAPI 3.1 description of this app's API, each exposed task's parameters as this app checks them."""
    spec = copy.deepcopy(_written())
    spec["info"]["title"] = NAME
    start = spec.pop("x-start-task")
    views = current_app.view_functions
    exposed = [
        (rule, model)
        for rule in current_app.url_map.iter_rules()
        if (model := getattr(views[rule.endpoint], "parameters", None))
    ]
    # All at once: two structures of one name (a `Line` in two modules) are told apart.
    keys: list[tuple[type[BaseModel], Literal["validation"]]] = [(model, "validation") for _, model in exposed]
    refs, described = models_json_schema(keys, ref_template="#/components/schemas/{model}", schema_generator=_Schema)
    components = described.get("$defs", {})
    for (rule, parameters), key in zip(exposed, keys, strict=True):
        schema = components[refs[key]["$ref"].rsplit("/", 1)[-1]]  # the body's own, in place
        operation = copy.deepcopy(start)
        operation.update(summary=f"Start {parameters.__name__}", operationId=rule.endpoint)
        body = operation["requestBody"]
        body["required"] = "required" in schema  # without a body, a task's required parameters are missing: 400
        body["content"]["application/json"]["schema"] = schema
        spec["paths"].setdefault(rule.rule, {})["post"] = operation
    bodies = {ref["$ref"].rsplit("/", 1)[-1] for ref in refs.values()}  # one task may be exposed at two rules
    spec["components"]["schemas"].update({name: schema for name, schema in components.items() if name not in bodies})
    return spec


def json_object() -> dict[str, Any]:
    """The body as a JSON object; no body at all reads as an empty one.

    413 past MAX_CONTENT_LENGTH (Flask, as the body is read), 415 for another content
    type, 400 for anything else that is not a JSON object.
    """
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
        body = json.loads(data, parse_float=_number, parse_constant=_refuse)
    except (ValueError, RecursionError):  # RecursionError: "[[[[..." nested past Python's limit
        abort(400, description="The body is not valid JSON.")
    if not isinstance(body, dict):
        abort(400, description="The body must be a JSON object.")
    return body


def _number(literal: str) -> float:
    """A number written with a fraction or an exponent: ``750.0`` is the integer 750, as JSON Schema counts it.

    The description says ``integer`` for an ``int`` parameter, and JSON Schema takes 750.0
    for one; strict validation would refuse it as a float.
    """
    number = float(literal)
    return int(number) if number.is_integer() else number


def _refuse(constant: str) -> float:
    """NaN and Infinity are not JSON, though Python's parser takes them."""
    raise ValueError(constant)
