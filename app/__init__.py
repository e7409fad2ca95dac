"""Flask application factory with a late-bound Celery app.

Importing this package reads no configuration and decides nothing about the broker:
``create_app()`` does, each time it is called.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import Any

from flask import Flask
from werkzeug.exceptions import HTTPException

from app import routes
from app.celery_app import celery_init_app
from app.fixes import warn_if_unproven
from app.observability import metrics
from app.observability.logs import configure_logging
from app.observability.tracing import init_tracing
from app.settings import ConfigError, load_config
from app.web import auth, contract, dependencies, limits, request_id
from app.web.task_api import ExposeError


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app from the config file (``FLASK_CONFIG``), then ``test_config``.

    ``test_config`` holds Flask setting names and wins over the file; its ``CELERY``
    mapping is merged into the file's Celery settings rather than replacing them.
    """
    configure_logging()
    warn_if_unproven()
    app = Flask(__name__)
    app.json = contract.JSONProvider(app)
    # The API takes no large bodies; Flask answers 413 beyond this instead of reading on.
    app.config["MAX_CONTENT_LENGTH"] = 16 * 1024
    app.config.from_mapping(load_config(os.environ))
    if test_config:
        app.config.from_mapping(test_config, CELERY={**app.config["CELERY"], **test_config.get("CELERY", {})})
    celery_init_app(app)
    request_id.init_app(app)  # first: every answer has its id, a 401 too
    auth.init_app(app)  # then who calls, which the limits count by
    limits.init_app(app)
    app.register_blueprint(routes.bp)
    app.register_blueprint(dependencies.bp)
    app.register_blueprint(contract.bp)
    app.register_error_handler(HTTPException, contract.http_error_as_json)
    metrics.init_app(app)
    init_tracing(app)
    return app


def create_app_or_exit() -> Flask:
    """For entrypoints: a bad config, or a task expose() cannot serve, ends the process with one line and status 2."""
    try:
        return create_app()
    except (ConfigError, ExposeError) as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
