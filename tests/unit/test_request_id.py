"""X-Request-ID (app/web/request_id.py): kept or made, sent back on every response."""

from __future__ import annotations

import re

import pytest
from flask.testing import FlaskClient

GENERATED = re.compile(r"[0-9a-f]{32}")


@pytest.mark.parametrize(
    "incoming",
    ["abc-123", "A.b_c-9", "x" * 128],
    ids=["dashes", "every-kind-of-character", "128-characters"],
)
def test_a_valid_incoming_id_is_kept(client: FlaskClient, incoming: str) -> None:
    """A valid X-Request-ID comes back as it was."""
    assert client.get("/healthz", headers={"X-Request-ID": incoming}).headers["X-Request-ID"] == incoming


@pytest.mark.parametrize(
    "incoming",
    [None, "", "x" * 129, "has space", "<script>", "é"],
    ids=["none", "empty", "129-characters", "space", "markup", "not-ascii"],
)
def test_a_missing_or_invalid_id_is_replaced_never_echoed(client: FlaskClient, incoming: str | None) -> None:
    """Otherwise a new id is made; the invalid one appears nowhere in the answer."""
    headers = {} if incoming is None else {"X-Request-ID": incoming}
    response = client.get("/healthz", headers=headers)
    assert GENERATED.fullmatch(response.headers["X-Request-ID"])
    assert not incoming or incoming not in response.get_data(as_text=True) + str(response.headers)


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("GET", "/nowhere", 404), ("DELETE", "/task/", 405), ("POST", "/task/?", 202)],
    ids=["404", "405", "202"],
)
def test_every_response_carries_the_id(client: FlaskClient, method: str, path: str, status: int) -> None:
    """Errors too: the id ties a client's report to the server's log lines."""
    response = client.open(path, method=method, headers={"X-Request-ID": "abc-123"})
    assert (response.status_code, response.headers["X-Request-ID"]) == (status, "abc-123")
