"""The page at / (app/page.py, app/templates/index.html, app/static/task-page.js)."""

from __future__ import annotations

import re

from flask import Flask
from flask.testing import FlaskClient


def test_the_page_offers_the_configured_seconds_and_loads_its_script(app: Flask, client: FlaskClient) -> None:
    """GET / is HTML with the seconds field (the config's value and limit) and the page's own script."""
    app.config.update(SAMPLE_TASK_SECONDS=3, SAMPLE_TASK_MAX_SECONDS=30)
    response = client.get("/")
    assert (response.status_code, response.mimetype) == (200, "text/html")
    page = response.get_data(as_text=True)
    assert 'max="30" step="any" value="3"' in page
    assert '<script src="/static/task-page.js"></script>' in page
    assert "http" not in page  # nothing fetched from elsewhere: it works offline


def test_the_script_is_served_and_uses_only_this_api(client: FlaskClient) -> None:
    """The script comes from this app and fetches only paths under /task/ (POST, GET, DELETE)."""
    response = client.get("/static/task-page.js")
    script = response.get_data(as_text=True)
    response.close()
    assert (response.status_code, response.mimetype) == (200, "text/javascript")
    assert "http" not in script
    # Each fetch's first argument, a string or template literal: what the page calls.
    targets = re.findall(r"fetch\(\s*([\"'`][^\"'`]*)", script)
    assert len(targets) == script.count("fetch(") > 0
    assert [target for target in targets if not target[1:].startswith("/task/")] == []
