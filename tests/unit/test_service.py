"""The service's name (app/service.py), where its users see it."""

from __future__ import annotations

from flask.testing import FlaskClient

from app.service import NAME


def test_the_page_and_the_api_description_bear_the_services_name(client: FlaskClient) -> None:
    """The page's title and the OpenAPI description's title are app/service.py's NAME."""
    assert f"<title>{NAME}</title>" in client.get("/").get_data(as_text=True)
    assert client.get("/openapi.json").json["info"]["title"] == NAME
