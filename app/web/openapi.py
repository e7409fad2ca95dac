"""The API's OpenAPI description, served as JSON (the suite fuzzes the API against it)."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml
from flask import Blueprint

bp = Blueprint("openapi", __name__)


@cache
def _spec() -> dict[str, Any]:
    spec: dict[str, Any] = yaml.safe_load(Path(__file__).with_name("openapi.yaml").read_text(encoding="utf-8"))
    return spec


@bp.get("/openapi.json")
def openapi() -> dict[str, Any]:
    """The OpenAPI 3.0 description of this API."""
    return _spec()
