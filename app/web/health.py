"""Probes for orchestrators and load balancers."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app

from app.web.dependencies import readiness

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> dict[str, str]:
    """Liveness: the process serves requests. It checks no dependency on purpose."""
    return {"status": "ok"}


@bp.get("/readyz")
def readyz() -> tuple[dict[str, Any], int]:
    """Readiness: can the broker and the result backend be reached right now?"""
    checks = readiness(current_app.extensions["celery"])
    ready = all(state == "ok" for state in checks.values())
    return {"status": "ok" if ready else "unavailable", "checks": checks}, 200 if ready else 503
