"""Validating the service's settings and merging in the environment's.

The file keeps the seed's lower-case format. Flask's ``from_file`` would silently drop
lower-case keys, so each key is validated here and mapped to its upper-case Flask name.
"""

from __future__ import annotations

import logging
import math
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from app.settings.celery_checks import check_celery_settings
from app.settings.consistency import consistent
from app.settings.file import ConfigError, local_folders, read_config_file, type_name
from app.settings.security import SECURITY_KEYS, security_settings

__all__ = ["ConfigError", "load_config"]

logger = logging.getLogger(__name__)

DEFAULT_CONFIG_PATH = "./secrets/api-config.yaml"

# Secrets may come from the environment instead of the file (containers, CI):
# variable -> (section of the file or None for the top level, key).
ENV_OVERRIDES: dict[str, tuple[str | None, str]] = {
    "FLASK_SECRET_KEY": (None, "secret_key"),
    "CELERY_BROKER_URL": ("celery", "broker_url"),
    "CELERY_RESULT_BACKEND": ("celery", "result_backend"),
    "FLASK_AUTH_TOKENS": ("auth", "tokens"),
}
TOP_LEVEL_KEYS = (
    frozenset(
        {
            "port",
            "sample_task_seconds",
            "sample_task_max_seconds",
            "retry_attempts",
            "retry_backoff_seconds",
            "retry_backoff_max_seconds",
            "opentelemetry",
            "celery",
        }
    )
    | SECURITY_KEYS
)
REQUIRED_CELERY_SETTINGS = ("broker_url", "result_backend")
_ENV_VARIABLE_FOR = {".".join(filter(None, place)): name for name, place in ENV_OVERRIDES.items()}
_REQUIRED = object()


def config_path(environ: Mapping[str, str]) -> Path:
    """Where the config file is: ``FLASK_CONFIG`` or the default."""
    return Path(environ.get("FLASK_CONFIG") or DEFAULT_CONFIG_PATH)


def load_config(environ: Mapping[str, str] = os.environ) -> dict[str, Any]:
    """Read the config file, apply environment overrides, validate, return Flask settings."""
    path = config_path(environ)
    in_file = read_config_file(path)
    data = apply_env_overrides(in_file, environ)
    for key in data:
        if key not in TOP_LEVEL_KEYS:
            raise ConfigError(path, key, "unknown key (a typo?)")
    celery = _get(path, data, "celery", dict, "a mapping of Celery settings")
    for key in REQUIRED_CELERY_SETTINGS:
        _get(path, celery, key, str, "a non-empty string", prefix="celery.")
    check_celery_settings(path, celery)
    port = _get(path, data, "port", int, "an integer", default=8080)
    if not 1 <= port <= 65535:
        raise ConfigError(path, "port", f"expected a TCP port from 1 to 65535, got {port}")
    attempts = _get(path, data, "retry_attempts", int, "an integer", default=5)
    if attempts < 1:
        raise ConfigError(path, "retry_attempts", f"expected 1 or more (the first run counts), got {attempts}")
    _warn_if_readable_by_all(path, in_file)
    settings = {
        "CONFIG_FILE": str(path),
        "PORT": port,
        "SAMPLE_TASK_SECONDS": _seconds(path, data, "sample_task_seconds", default=5),
        "SAMPLE_TASK_MAX_SECONDS": _seconds(path, data, "sample_task_max_seconds", default=240),
        "RETRY_ATTEMPTS": attempts,
        "RETRY_BACKOFF_SECONDS": _seconds(path, data, "retry_backoff_seconds", default=1),
        "RETRY_BACKOFF_MAX_SECONDS": _seconds(path, data, "retry_backoff_max_seconds", default=60),
        "OPENTELEMETRY": _get(path, data, "opentelemetry", bool, "true or false", default=False),
        "CELERY": local_folders(path, celery),
        **security_settings(path, data, celery, environ),
    }
    return consistent(path, settings)


def apply_env_overrides(data: Mapping[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    """Return a copy of ``data`` with the secrets set in the environment put in place."""
    merged = dict(data)
    for variable, (section, key) in ENV_OVERRIDES.items():
        if not (value := environ.get(variable)):
            continue
        if section is None:
            merged[key] = value
        elif isinstance(current := merged.get(section) or {}, dict):
            merged[section] = {**current, key: value}
    return merged


def _warn_if_readable_by_all(path: Path, in_file: Mapping[str, Any]) -> None:
    """A file that holds a secret key or a password should be private to its owner."""
    urls = [value for value in (in_file.get("celery") or {}).values() if isinstance(value, str)]
    holds_secrets = "secret_key" in in_file or any(urlsplit(url).password for url in urls)
    if holds_secrets and path.stat().st_mode & stat.S_IROTH:
        logger.warning("config file %s holds secrets but any user can read it: chmod o-r %s", path, path)


def _seconds(path: Path, data: Mapping[str, Any], key: str, default: float) -> float:
    seconds: float = _get(path, data, key, (int, float), "a number", default=default)
    if not 0 <= seconds < math.inf:  # also refuses .nan, which compares false
        raise ConfigError(path, key, f"expected a finite number, 0 or more, got {seconds}")
    return seconds


def _get(
    path: Path,
    data: Mapping[str, Any],
    key: str,
    kind: type | tuple[type, ...],
    expected: str,
    default: Any = _REQUIRED,
    prefix: str = "",
) -> Any:
    name = prefix + key
    if key not in data:
        if default is _REQUIRED:
            variable = _ENV_VARIABLE_FOR.get(name)
            raise ConfigError(path, name, "missing required key" + (f" (or set {variable})" if variable else ""))
        return default
    value = data[key]
    # bool is an int in Python, but `port: true` is a mistake, not port 1.
    if (isinstance(value, bool) and kind is not bool) or not isinstance(value, kind) or value == "":
        raise ConfigError(path, name, f"expected {expected}, got {type_name(value)}")
    return value
