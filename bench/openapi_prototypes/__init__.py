"""expose() rebuilt on APIFlask, flask-openapi3 and flask-smorest, beside today's: bench/openapi_libraries.py.

Each prototype module gives ``create_app()``: today's app, built as the library's app class,
its task POSTs (the sample's ``/task/`` and ``render_invoice``'s ``/invoices/``) served by
the library, ``/openapi.json`` from the library's description; ``GET``/``DELETE
/task/<id>`` stay today's routes. shared.py and signature.py are what they keep of
today's code; this module is the bench's scaffolding, not part of any approach.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any
from unittest import mock

from celery import Task, shared_task
from flask import Blueprint, Flask
from pydantic import Field

import app
from app.web.task_api import expose


@shared_task(bind=True)  # type: ignore[untyped-decorator]
def render_invoice(self: Task, invoice_id: int, amount_cents: Annotated[int, Field(ge=0)]) -> str:
    """The task of docs/api.md's guide: required parameters, a constraint."""
    return f"invoice {invoice_id}: {amount_cents} cents"


@contextmanager
def built_as(flask_class: Callable[..., Flask]) -> Iterator[None]:
    """create_app() as it is, but making a `flask_class` and leaving routes.py's POST /task/ to the prototype."""
    with mock.patch.object(app, "Flask", flask_class), mock.patch("app.web.task_api._serve", return_value=None):
        yield


def serve_spec(flask_app: Flask, spec: Callable[[], dict[str, Any]]) -> None:
    """``GET /openapi.json`` (contract.openapi, public as before) answers `spec()`."""
    flask_app.view_functions["contract.openapi"] = spec


def create_app() -> Flask:
    """Today's app: expose() for the sample (routes.py) and for render_invoice."""
    flask_app = app.create_app()
    extra = Blueprint("invoices", __name__)
    expose(extra, "/invoices/", render_invoice)
    flask_app.register_blueprint(extra)
    return flask_app
