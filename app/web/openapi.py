"""The API's OpenAPI description, served as JSON (the suite fuzzes the API against it)."""

from __future__ import annotations

import copy
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from flask import Blueprint, current_app

bp = Blueprint("openapi", __name__)


@cache
def _spec() -> dict[str, Any]:
    spec: dict[str, Any] = yaml.safe_load(Path(__file__).with_name("openapi.yaml").read_text(encoding="utf-8"))
    return spec


@bp.get("/openapi.json")
def openapi() -> dict[str, Any]:
    """The OpenAPI 3.0 description of this API, with this app's limit on `seconds`."""
    spec = copy.deepcopy(_spec())
    body = spec["paths"]["/task/"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    body["properties"]["seconds"]["maximum"] = current_app.config["SAMPLE_TASK_MAX_SECONDS"]
    return spec
