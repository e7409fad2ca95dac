"""The service's settings: the file's keys declared as pydantic models, the environment's secrets merged in.

The file keeps the seed's lower-case format. Flask's ``from_file`` would silently drop
lower-case keys, so each key is declared here and given its upper-case Flask name. pydantic
checks types strictly (``port: true`` is a mistake, not port 1), ranges, required and
unknown keys; its first error becomes one ConfigError naming the file and the key.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import ErrorDetails

from app.settings.celery_checks import check_celery_settings
from app.settings.consistency import consistent
from app.settings.file import ConfigError, local_folders, read_config_file, type_name

__all__ = ["ConfigError", "load_config"]

logger = logging.getLogger(__name__)

DEFAULT_CONFIG_PATH = "./secrets/api-config.yaml"
# Secret keys published in this repository (the example config, the seed's README):
# anyone can sign sessions with them, so they are accepted only in debug mode.
PUBLIC_SECRET_KEYS = frozenset({"my_secret_key"})
# Secrets may come from the environment instead of the file (containers, CI): variable -> key.
ENV_OVERRIDES = {
    "FLASK_SECRET_KEY": "secret_key",
    "CELERY_BROKER_URL": "celery.broker_url",
    "CELERY_RESULT_BACKEND": "celery.result_backend",
}
# Errors about a value of the right type, which is then shown: a number, never a secret.
RANGE_ERRORS = frozenset({"greater_than_equal", "less_than_equal", "finite_number"})


@dataclass(frozen=True)
class Expected:
    """How an error names what a key takes: its type, and its range once the type is right."""

    kind: str
    range: str = ""


NonEmptyString = Annotated[str, Field(min_length=1), Expected("a non-empty string")]
# int | float: a whole number stays one (the page and the API schema show 5, not 5.0).
Seconds = Annotated[int | float, Field(ge=0, allow_inf_nan=False), Expected("a number", "a finite number, 0 or more")]
STRICT = ConfigDict(strict=True, extra="forbid")


class CelerySection(BaseModel):
    """``celery:``: the URLs every process needs; Celery's other settings, checked against its own table."""

    model_config = ConfigDict(strict=True, extra="allow")
    broker_url: NonEmptyString
    result_backend: NonEmptyString


class Settings(BaseModel):
    """The file's keys. A new section: a model like CelerySection, and a field here."""

    model_config = STRICT
    celery: Annotated[CelerySection, Expected("a mapping of Celery settings")]
    port: Annotated[int, Field(ge=1, le=65535), Expected("an integer", "a TCP port from 1 to 65535")] = 8080
    retry_attempts: Annotated[int, Field(ge=1), Expected("an integer", "1 or more (the first run counts)")] = 5
    secret_key: NonEmptyString
    sample_task_seconds: Seconds = 5
    sample_task_max_seconds: Seconds = 240
    retry_backoff_seconds: Seconds = 1
    retry_backoff_max_seconds: Seconds = 60
    opentelemetry: Annotated[bool, Expected("true or false")] = False


def config_path(environ: Mapping[str, str]) -> Path:
    """Where the config file is: ``FLASK_CONFIG`` or the default."""
    return Path(environ.get("FLASK_CONFIG") or DEFAULT_CONFIG_PATH)


def load_config(environ: Mapping[str, str] = os.environ) -> dict[str, Any]:
    """Read the config file, apply environment overrides, validate, return Flask settings."""
    path = config_path(environ)
    in_file = read_config_file(path)
    try:
        settings = Settings.model_validate(apply_env_overrides(in_file, environ))
    except ValidationError as error:
        # An unknown key first: `secret-key:` is a typo before it is a missing `secret_key`.
        first = min(error.errors(), key=lambda detail: detail["type"] != "extra_forbidden")
        raise config_error(path, first) from None
    check_celery_settings(path, settings.celery.model_extra or {})
    if settings.secret_key in PUBLIC_SECRET_KEYS and not _debug(environ):
        raise ConfigError(path, "secret_key", "is the published example value: set your own (or FLASK_SECRET_KEY)")
    _warn_if_readable_by_all(path, in_file)
    flask_settings = {key.upper(): value for key, value in settings.model_dump().items()}
    flask_settings["CELERY"] = local_folders(path, flask_settings["CELERY"])
    return consistent(path, {"CONFIG_FILE": str(path), **flask_settings})


def config_error(path: Path, error: ErrorDetails) -> ConfigError:
    """pydantic's error as a ConfigError naming the key as the file writes it (``celery.broker_url``)."""
    names: list[str] = []
    model: Any = Settings
    expected = None
    for part in error["loc"]:
        if model is None:  # past the key: the tag of a union's member (`int`, `float`)
            break
        names.append(str(part))
        field = model.model_fields.get(part)
        expected = next((item for item in field.metadata if isinstance(item, Expected)), None) if field else None
        model = field.annotation if field and isinstance(field.annotation, type(BaseModel)) else None
    key, kind = ".".join(names), error["type"]
    if kind == "missing":
        variable = next((name for name, place in ENV_OVERRIDES.items() if place == key), None)
        reason = "missing required key" + (f" (or set {variable})" if variable else "")
    elif kind == "extra_forbidden":
        reason = "unknown key (a typo?)"
    elif expected is None:  # a key declared without Expected: pydantic's own words
        reason = error["msg"]
    elif kind in RANGE_ERRORS:
        reason = f"expected {expected.range}, got {error['input']}"
    else:
        reason = f"expected {expected.kind}, got {type_name(error['input'])}"
    return ConfigError(path, key, reason)


def apply_env_overrides(data: Mapping[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    """Return a copy of ``data`` with the secrets set in the environment put in place."""
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


def _debug(environ: Mapping[str, str]) -> bool:
    """FLASK_DEBUG read as Flask reads it (``flask.helpers.get_debug_flag``)."""
    return environ.get("FLASK_DEBUG", "").lower() not in ("", "0", "false", "no")


def _warn_if_readable_by_all(path: Path, in_file: Mapping[str, Any]) -> None:
    """A file that holds a secret key or a password should be private to its owner."""
    urls = [value for value in (in_file.get("celery") or {}).values() if isinstance(value, str)]
    holds_secrets = "secret_key" in in_file or any(urlsplit(url).password for url in urls)
    if holds_secrets and path.stat().st_mode & stat.S_IROTH:
        logger.warning("config file %s holds secrets but any user can read it: chmod o-r %s", path, path)
