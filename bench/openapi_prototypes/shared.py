"""What an endpoint served by any of the libraries still takes from today's code: the YAML's routes.

(The start after its validation is task_api.accept().) ``described()`` puts the
library's description of each task's POST into app/web/openapi.yaml, with the header and
the answers that ``x-start-task`` gives every such POST (no library infers those).
"""

from __future__ import annotations

import copy
from typing import Any

from app.service import NAME
from app.web.contract import _written


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
