"""Pages made from the code: the API from the OpenAPI document the app serves, the tasks, the settings.

A page asks for one with a line ``<!-- generated: NAME -->``; the build replaces it with
Markdown before MyST reads the page, so a page and the code cannot disagree.
"""

from __future__ import annotations

import inspect
import json
import os
import re
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml
from flask import Flask
from sphinx.application import Sphinx

PLACEHOLDER = re.compile(r"^<!-- generated: ([\w-]+) -->$", re.MULTILINE)
REPOSITORY = Path(__file__).parents[2]


@contextmanager
def embedded_app() -> Iterator[Flask]:
    """create_app() on the embedded config, its files in a folder of its own (no server, nothing left behind)."""
    config = yaml.safe_load((REPOSITORY / "config" / "embedded.yaml").read_text(encoding="utf-8"))
    saved = dict(os.environ)
    with tempfile.TemporaryDirectory() as folder:
        options = config["celery"]["broker_transport_options"]
        options.update(data_folder_in=folder, data_folder_out=folder, control_folder=folder)
        config["celery"]["result_backend"] = f"file://{folder}"
        path = Path(folder, "config.yaml")
        path.write_text(yaml.safe_dump({**config, "secret_key": "docs-build"}), encoding="utf-8")
        path.chmod(0o600)
        os.environ["FLASK_CONFIG"] = str(path)
        os.environ.pop("FLASK_SECRET_KEY", None)
        try:
            from app import create_app

            yield create_app()
        finally:
            os.environ.clear()
            os.environ.update(saved)


def tasks() -> str:
    """The app's own tasks (not Celery's): each one's arguments and the first paragraph of its docstring."""
    with embedded_app() as app:
        registry = app.extensions["celery"].tasks
    out = []
    for name in sorted(name for name in registry if not name.startswith("celery.")):
        run = registry[name].run
        parameters = inspect.signature(run).parameters.values()
        # Annotations are strings under `from __future__ import annotations`: shown as written, unquoted.
        arguments = ", ".join(str(item).replace(repr(item.annotation), str(item.annotation)) for item in parameters)
        summary = _flat((inspect.getdoc(run) or "").split("\n\n")[0])
        out.append(f"- `{name}({arguments})`: {summary}")
    return "\n".join(out)


def api() -> str:
    """Each path and method of GET /openapi.json: summary, parameters, body, responses."""
    with embedded_app() as app:
        document = app.test_client().get("/openapi.json").get_json()
    out = [f"Generated from `GET /openapi.json` (OpenAPI {document['openapi']}).\n"]
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            out.append(
                f"### `{method.upper()} {path}`\n\n{operation.get('summary', '')} (`{operation['operationId']}`)\n"
            )
            for parameter in operation.get("parameters", []):
                schema = json.dumps(parameter.get("schema", {}), sort_keys=True)
                about = _flat(parameter.get("description", ""))
                out.append(f"- {parameter['in']} `{parameter['name']}` (`{schema}`): {about}")
            body = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
            if body:
                out.append(f"- body (JSON):\n\n  ```json\n  {json.dumps(body, sort_keys=True)}\n  ```")
            for status, response in operation["responses"].items():
                out.append(f"- `{status}`: {_flat(_resolve(document, response).get('description', ''))}")
            out.append("")
    return "\n".join(out)


def settings_keys() -> str:
    """The config file's keys, what each takes, its default and the variable that replaces it (app/settings/keys.py)."""
    from pydantic_core import PydanticUndefined

    from app.settings.keys import ENV_OVERRIDES, CelerySection, Expected, Settings

    variables = {key: name for name, key in ENV_OVERRIDES.items()}
    fields = [(name, field) for name, field in Settings.model_fields.items() if name != "celery"]
    fields += [(f"celery.{name}", field) for name, field in CelerySection.model_fields.items()]
    rows = []
    for key, field in fields:
        takes = next(item for item in field.metadata if isinstance(item, Expected))
        default = "required" if field.default is PydanticUndefined else f"`{json.dumps(field.default)}`"
        variable = f"`{variables[key]}`" if key in variables else ""
        rows.append(f"| `{key}` | {takes.range or takes.kind} | {default} | {variable} |")
    return "\n".join(["| key | takes | default | environment variable |", "|---|---|---|---|", *rows])


def celery_defaults() -> str:
    """The factory's Celery defaults, and each broker's and the database backend's own (celery_defaults.py)."""
    from app.settings import celery_defaults as defaults

    groups: list[tuple[str, Mapping[str, Any]]] = [("every app", defaults.CELERY_DEFAULTS)]
    groups += [(f"broker `{kind}`", values) for kind, values in defaults.BROKER_DEFAULTS.items()]
    groups.append(("result backend `db+...`", defaults.DATABASE_BACKEND_DEFAULTS))
    rows = [
        f"| `{name}` | {where} | `{json.dumps(value, sort_keys=True, default=str)}` |"
        for where, values in groups
        for name, value in values.items()
    ]
    return "\n".join(["| setting | applies to | default |", "|---|---|---|", *rows])


GENERATORS: dict[str, Callable[[], str]] = {
    "api": api,
    "tasks": tasks,
    "settings-keys": settings_keys,
    "celery-defaults": celery_defaults,
}


def _flat(text: str) -> str:
    return " ".join(text.split())


def _resolve(document: Mapping[str, Any], item: Mapping[str, Any]) -> Mapping[str, Any]:
    if "$ref" not in item:
        return item
    node: Any = document
    for part in item["$ref"].removeprefix("#/").split("/"):
        node = node[part]
    return node  # type: ignore[no-any-return]


def replace(app: Sphinx, docname: str, source: list[str]) -> None:
    """Put each generated part where its page asks for it."""
    source[0] = PLACEHOLDER.sub(lambda match: GENERATORS[match[1]](), source[0])


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("source-read", replace)
    return {"parallel_read_safe": True}
