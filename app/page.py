"""``GET /``: a page that starts the sample task, follows its progress and can cancel it.

It only uses the JSON API (app/routes.py) from the browser: no build step, nothing
fetched from elsewhere, so it works offline.
"""

from __future__ import annotations

from flask import Blueprint, current_app, render_template

bp = Blueprint("page", __name__)


@bp.get("/")
def index() -> str:
    """The page, with the sample task's configured seconds and their limit."""
    config = current_app.config
    return render_template(
        "index.html", seconds=config["SAMPLE_TASK_SECONDS"], max_seconds=config["SAMPLE_TASK_MAX_SECONDS"]
    )
