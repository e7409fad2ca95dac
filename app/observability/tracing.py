"""OpenTelemetry traces if the config says ``opentelemetry: true``: a request, its tasks' publishes and runs, one trace.

Off, nothing is imported (requirements-otel.txt). Where spans go is the SDK's business, set up before create_app().
"""

from __future__ import annotations

from flask import Flask

from app.settings import ConfigError


def init_tracing(app: Flask) -> None:
    """Trace `app`'s requests and every Celery task of this process, if the config asks for it."""
    if not app.config["OPENTELEMETRY"]:
        return
    try:
        from opentelemetry.instrumentation.celery import CeleryInstrumentor
        from opentelemetry.instrumentation.flask import FlaskInstrumentor
    except ImportError as error:
        reason = f"needs the optional packages (pip install -r requirements-otel.txt): {error}"
        raise ConfigError(app.config["CONFIG_FILE"], "opentelemetry", reason) from None
    FlaskInstrumentor().instrument_app(app)  # type: ignore[no-untyped-call]
    celery = CeleryInstrumentor()  # type: ignore[no-untyped-call]
    if not celery.is_instrumented_by_opentelemetry:  # Celery's signals are process-wide: hook them once
        celery.instrument()
