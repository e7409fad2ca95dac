"""Probes for orchestrators and load balancers."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> dict[str, str]:
    """Liveness: the process serves requests. It checks no dependency on purpose."""
    return {"status": "ok"}
