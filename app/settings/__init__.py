"""Loading the service's settings: the file's, the environment's secrets over them, checked, by their Flask names.

The file keeps the seed's lower-case keys, which Flask's ``from_file`` would silently drop:
each is declared (keys.py) and given its upper-case Flask name.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationError

from app.settings.celery_defaults import celery_settings
from app.settings.file import ConfigError, local_folders, read_config_file
from app.settings.keys import ENV_OVERRIDES, UNKNOWN_KEY_ERRORS, Settings, check_celery_settings, config_error
from app.settings.security import SECURITY_KEYS, check_signing, security_settings

__all__ = ["ConfigError", "load_config"]

logger = logging.getLogger(__name__)


def load_config(environ: Mapping[str, str] = os.environ) -> dict[str, Any]:
    """Read the config file (``FLASK_CONFIG``), apply environment overrides, validate, return Flask settings."""
    path = Path(environ.get("FLASK_CONFIG") or "./secrets/api-config.yaml")
    in_file = read_config_file(path)
    try:
        settings = Settings.model_validate(apply_env_overrides(in_file, environ))
    except ValidationError as error:
        # An unknown key first: `secret-key:` is a typo before `secret_key` is missing.
        raise config_error(path, min(error.errors(), key=lambda e: e["type"] not in UNKNOWN_KEY_ERRORS)) from None
    check_celery_settings(path, settings.celery.model_extra or {})
    # A file that holds a secret key or a password should be private to its owner.
    urls = [value for value in (in_file.get("celery") or {}).values() if isinstance(value, str)]
    if ("secret_key" in in_file or any(urlsplit(url).password for url in urls)) and path.stat().st_mode & stat.S_IROTH:
        logger.warning("config file %s holds secrets but any user can read it: chmod o-r %s", path, path)
    flask_settings = {key.upper(): value for key, value in settings.model_dump(exclude=set(SECURITY_KEYS)).items()}
    flask_settings["CELERY"] = local_folders(path, flask_settings["CELERY"])
    flask_settings.update(security_settings(path, settings, environ))
    return consistent(path, {"CONFIG_FILE": str(path), **flask_settings})


def apply_env_overrides(data: Mapping[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    """A copy of ``data`` with the secrets the environment sets (ENV_OVERRIDES, and only those) in place.

    A section the file gives as something else than a mapping stays as it is, to be reported.
    """
    merged = dict(data)
    for variable, place in ENV_OVERRIDES.items():
        if not (value := environ.get(variable)):
            continue
        section, _, key = place.rpartition(".")
        if not section:
            merged[key] = value
        elif isinstance(current := merged.get(section) or {}, dict):
            merged[section] = {**current, key: value}
    return merged


def consistent(path: Path, settings: dict[str, Any]) -> dict[str, Any]:
    """``settings`` (by their Flask names), once no two contradict each other and signing works; else ConfigError.

    A contradiction would otherwise show only later and elsewhere: a task the API accepted killed
    at its time limit, a 500 from ``GET /task/<id>``, a retry wait that ignores its base.
    """
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
