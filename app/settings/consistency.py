"""Settings that each pass their own check but contradict one another, refused at startup.

Each contradiction would otherwise show only later and elsewhere: a task the API accepted
killed at its time limit, a 500 from ``GET /task/<id>``, a retry wait that ignores its base.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from app.settings.celery_defaults import celery_settings
from app.settings.file import ConfigError
from app.settings.signing import check_signing


def consistent(path: Path, settings: dict[str, Any]) -> dict[str, Any]:
    """``settings`` (by their Flask names), once no two contradict each other; else ConfigError."""
    celery = celery_settings(settings["CELERY"])  # the factory's defaults count, as in the worker
    if not celery["result_extended"]:
        reason = "must stay true: GET /task/<id> reads a retrying task's attempt count from its stored result"
        raise ConfigError(path, "celery.result_extended", reason)
    # Unset, null or 0: no limit (Celery's meaning). The lower one stops the task first.
    if limits := sorted((celery[key], key) for key in ("task_soft_time_limit", "task_time_limit") if celery.get(key)):
        limit, limit_key = limits[0]
        for key in ("sample_task_seconds", "sample_task_max_seconds"):
            if not (seconds := settings[key.upper()]) < limit:
                reason = f"expected less than celery.{limit_key} ({limit} s), which would stop the task, got {seconds}"
                raise ConfigError(path, key, reason)
    backoff, cap = settings["RETRY_BACKOFF_SECONDS"], settings["RETRY_BACKOFF_MAX_SECONDS"]
    if backoff > cap:
        reason = f"expected at most retry_backoff_max_seconds ({cap}), which caps every wait, got {backoff}"
        raise ConfigError(path, "retry_backoff_seconds", reason)
    check_signing(path, celery)
    return settings
