"""The start-up warning when Celery, kombu or py-amqp are not the releases app/fixes/ was proven on."""

from __future__ import annotations

from collections.abc import Iterator
from importlib import metadata

import pytest

from app import create_app
from app.fixes import warn_if_unproven
from tests.unit.conftest import WriteConfig

AS_PROVEN = {"celery": "5.7.0", "kombu": "5.7.0", "amqp": "5.4.2"}


@pytest.fixture
def installed(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """The versions importlib.metadata reports for Celery, kombu and py-amqp (as proven unless a test changes them)."""
    versions = dict(AS_PROVEN)
    real_version = metadata.version
    monkeypatch.setattr(metadata, "version", lambda package: versions.get(package) or real_version(package))
    warn_if_unproven.cache_clear()  # as in a new process
    yield versions
    warn_if_unproven.cache_clear()


def warnings_logged(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str]]:
    """The level and text of each line app/fixes/ logged."""
    return [(record.levelno, record.getMessage()) for record in caplog.records if record.name == "app.fixes"]


@pytest.mark.parametrize(
    ("versions", "unproven"),
    [
        ({}, None),
        ({"kombu": "5.7.3"}, None),
        ({"kombu": "5.8.0"}, "kombu 5.8.0 (proven on 5.7.*)"),
        ({"celery": "5.7.1", "amqp": "5.5.0"}, "celery 5.7.1 (proven on 5.7.0), amqp 5.5.0 (proven on 5.4.2)"),
    ],
    ids=["as-proven", "another-kombu-5.7", "kombu-5.8", "celery-and-py-amqp"],
)
def test_create_app_warns_once_when_upstream_releases_are_not_the_proven_ones(
    installed: dict[str, str],
    write_config: WriteConfig,
    caplog: pytest.LogCaptureFixture,
    versions: dict[str, str],
    unproven: str | None,
) -> None:
    """One WARNING line naming each package, its installed and its proven release, and the docs page; once."""
    installed.update(versions)
    write_config()
    create_app()
    create_app()
    expected = f"not the upstream releases app/fixes/ was proven on: {unproven}; see docs/upstream.md"
    assert warnings_logged(caplog) == ([(30, expected)] if unproven else [])


def test_the_installed_releases_are_the_proven_ones(caplog: pytest.LogCaptureFixture) -> None:
    """requirements.txt pins what app/fixes/ was proven on: after an upgrade, re-prove, then update PROVEN."""
    warn_if_unproven.cache_clear()
    try:
        warn_if_unproven()
    finally:
        warn_if_unproven.cache_clear()
    assert warnings_logged(caplog) == []
