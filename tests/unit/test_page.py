"""The page at / (app/routes.py, app/templates/index.html, app/static/task-page.js)."""

from __future__ import annotations

import re

import pytest
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


@pytest.mark.parametrize("auth", [True, False], ids=["auth-on", "auth-off"])
def test_the_page_asks_for_a_token_only_when_the_service_requires_one(
    app: Flask, client: FlaskClient, auth: bool
) -> None:
    """With authentication on, a password field without a name (never sent in a URL); off, no token field."""
    if not auth:
        app.config["AUTH_TOKENS"] = None  # what `auth: false` leaves; GET / is public either way
    page = client.get("/").get_data(as_text=True)
    fields = re.findall(r"<input [^>]*>", page)
    token_fields = [field for field in fields if 'id="token"' in field]
    expected = '<input id="token" type="password" autocomplete="off" spellcheck="false">'
    assert token_fields == ([expected] if auth else [])
    assert [field for field in fields if "name=" in field] == []


def test_the_script_is_served_and_uses_only_this_api(client: FlaskClient) -> None:
    """The script comes from this app and calls only paths under /task/ (POST, GET, DELETE), all through api()."""
    response = client.get("/static/task-page.js")
    script = response.get_data(as_text=True)
    response.close()
    assert (response.status_code, response.mimetype) == (200, "text/javascript")
    assert "http" not in script
    assert script.count("fetch(") == 1  # inside api(), which adds the token
    # Each api() call's first argument, a string or template literal: what the page calls.
    targets = re.findall(r"await api\(\s*([\"'`][^\"'`]*)", script)
    assert len(targets) == script.count("await api(") == 3
    assert [target for target in targets if not target[1:].startswith("/task/")] == []


def test_the_script_keeps_the_token_in_the_tabs_session_storage_only(client: FlaskClient) -> None:
    """The token goes to sessionStorage and the Authorization header: no cookie, localStorage or log."""
    response = client.get("/static/task-page.js")
    script = response.get_data(as_text=True)
    response.close()
    assert "sessionStorage.setItem(TOKEN_KEY" in script
    assert "Authorization: `Bearer ${token}`" in script
    assert [word for word in ("document.cookie", "localStorage", "console.") if word in script] == []
