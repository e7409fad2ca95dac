"""OpenTelemetry on or off (app/observability/tracing.py): off, nothing changes."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest
from opentelemetry.instrumentation.celery import CeleryInstrumentor

from app import create_app
from app.settings import ConfigError
from tests.unit.conftest import IN_MEMORY_CONFIG, WriteConfig

INSTRUMENTATIONS = ("opentelemetry.instrumentation.flask", "opentelemetry.instrumentation.celery")


@pytest.mark.parametrize("installed", [True, False], ids=["installed", "absent"])
def test_off_by_default_nothing_is_hooked_in(
    write_config: WriteConfig, monkeypatch: pytest.MonkeyPatch, installed: bool
) -> None:
    """Without `opentelemetry: true` the app is not instrumented, and needs no OpenTelemetry at all."""
    if not installed:
        for module in INSTRUMENTATIONS:
            monkeypatch.setitem(sys.modules, module, None)  # importing it raises ImportError
    write_config()
    app = create_app()
    assert not getattr(app, "_is_instrumented_by_opentelemetry", False)
    assert app.test_client().post("/task/").status_code == 202


@pytest.fixture
def celery_instrumentation() -> Iterator[CeleryInstrumentor]:
    """OpenTelemetry's Celery instrumentation, taken out again after the test (it is process-wide)."""
    instrumentor = CeleryInstrumentor()
    yield instrumentor
    instrumentor.uninstrument()


def test_on_the_app_and_celery_are_instrumented(
    write_config: WriteConfig, celery_instrumentation: CeleryInstrumentor
) -> None:
    """With `opentelemetry: true`, OpenTelemetry's Flask and Celery instrumentations are in place, once."""
    write_config({**IN_MEMORY_CONFIG, "opentelemetry": True})
    apps = create_app(), create_app()
    assert all(app._is_instrumented_by_opentelemetry for app in apps)  # type: ignore[attr-defined]
    assert celery_instrumentation.is_instrumented_by_opentelemetry


def test_on_without_the_packages_is_a_config_error(write_config: WriteConfig, monkeypatch: pytest.MonkeyPatch) -> None:
    """Asked for but not installed: one line naming the file and the key, as for every bad config."""
    monkeypatch.setitem(sys.modules, INSTRUMENTATIONS[0], None)
    path = write_config({**IN_MEMORY_CONFIG, "opentelemetry": True})
    with pytest.raises(ConfigError) as caught:
        create_app()
    assert (caught.value.source, caught.value.key) == (str(path), "opentelemetry")
    assert caught.value.reason.startswith("needs the optional packages (pip install -r requirements-otel.txt): ")


def test_a_setting_other_than_true_or_false_is_refused(write_config: WriteConfig) -> None:
    """`opentelemetry: yes` is a typo: one line naming the key."""
    write_config({**IN_MEMORY_CONFIG, "opentelemetry": "yes"})
    with pytest.raises(ConfigError, match="key 'opentelemetry': expected true or false, got a string"):
        create_app()
