"""Every error the API answers is JSON, never Werkzeug's HTML page."""

from __future__ import annotations

from flask import Flask, json
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response


def http_error_as_json(error: HTTPException) -> Response:
    """Keep the status and headers (``Allow`` on 405) of ``error``, with a JSON body."""
    response = error.get_response()
    response.data = json.dumps({"error": {"code": error.code, "name": error.name, "message": error.description}})
    response.content_type = "application/json"
    return response


def register_error_handlers(app: Flask) -> None:
    """Answer JSON for every HTTP error, unhandled exceptions (500) included."""
    app.register_error_handler(HTTPException, http_error_as_json)
