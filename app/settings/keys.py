"""The keys a config file may hold: pydantic models, and Celery's own table for ``celery:``; errors in the file's words.

Strict types: ``port: true`` is a mistake, not port 1; ``worker_prefetch_multiplier: "lots"`` stops
startup, not the worker once it reads it; ``brokerurl`` is a typo, not a silent fall back to a default.
An error names the key as the file writes it (``celery.broker_url``), what the key takes and what it got.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, NamedTuple

from celery.app.defaults import NAMESPACES, Option, flatten
from pydantic import BaseModel, ConfigDict, Field
from pydantic_core import ErrorDetails

from app.settings.file import TYPE_NAMES, ConfigError, type_name

# Secrets the environment may give instead of the file (containers, CI): variable -> key.
ENV_OVERRIDES = {
    "FLASK_SECRET_KEY": "secret_key",
    "CELERY_BROKER_URL": "celery.broker_url",
    "CELERY_RESULT_BACKEND": "celery.result_backend",
    "FLASK_AUTH_TOKENS": "auth.tokens",
}
# A key that is no field: a misspelt name, or a number (YAML's `1:`), which pydantic refuses apart.
UNKNOWN_KEY_ERRORS = frozenset({"extra_forbidden", "invalid_key"})
# Errors about a value of the right type, which is shown then: a number, never a secret.
RANGE_ERRORS = frozenset({"greater_than_equal", "less_than_equal", "finite_number"})


class Expected(NamedTuple):
    """What a key takes, as an error says it: its type, and its range once the type is right."""

    kind: str
    range: str = ""


NonEmptyString = Annotated[str, Field(min_length=1), Expected("a non-empty string")]
# int | float: a whole number stays one (the page and the API schema show 5, not 5.0).
Seconds = Annotated[int | float, Field(ge=0, allow_inf_nan=False), Expected("a number", "a finite number, 0 or more")]


class CelerySection(BaseModel):
    """``celery:``: the URLs every process needs; Celery's other settings, checked against its own table."""

    model_config = ConfigDict(strict=True, extra="allow")
    broker_url: NonEmptyString
    result_backend: NonEmptyString


class Settings(BaseModel):
    """The file's top level. A new section: a model like CelerySection, a field here, an Expected for each key."""

    model_config = ConfigDict(strict=True, extra="forbid")
    celery: Annotated[CelerySection, Expected("a mapping of Celery settings")]
    port: Annotated[int, Field(ge=1, le=65535), Expected("an integer", "a TCP port from 1 to 65535")] = 8080
    retry_attempts: Annotated[int, Field(ge=1), Expected("an integer", "1 or more (the first run counts)")] = 5
    sample_task_seconds: Seconds = 5
    sample_task_max_seconds: Seconds = 240
    retry_backoff_seconds: Seconds = 1
    retry_backoff_max_seconds: Seconds = 60
    opentelemetry: Annotated[bool, Expected("true or false")] = False
    secret_key: NonEmptyString = None  # type: ignore[assignment]  # Flask's; unset: None (pydantic checks no default)
    # Checked by security.py: together (internal_port against port, limits' storage against the result backend),
    # with errors that show the value or name the client, as config_error's do not: declared here as file keys.
    auth: Annotated[Any, Expected("false, or a mapping with tokens")] = None
    limits: Annotated[Any, Expected("a mapping: start_rate, unfinished_tasks, storage_url")] = None
    internal_port: Annotated[Any, Expected("a TCP port other than port")] = 9090


def config_error(path: Path, error: ErrorDetails) -> ConfigError:
    """pydantic's ``error`` as a ConfigError naming the key and saying what it takes."""
    names: list[str] = []
    model: Any = Settings
    for part in error["loc"]:
        if model is None:  # past the key: the tag of a union's member (`int`, `float`)
            break
        names.append(str(part))
        field = model.model_fields.get(part)
        model = field.annotation if field and isinstance(field.annotation, type(BaseModel)) else None
    key, kind = ".".join(names), error["type"]
    if kind == "missing":
        variable = next((name for name, place in ENV_OVERRIDES.items() if place == key), None)
        reason = "missing required key" + (f" (or set {variable})" if variable else "")
    elif kind in UNKNOWN_KEY_ERRORS:
        reason = "unknown key (a typo?)"
    else:  # a type or range error: `field` is the key's own
        expected = next(item for item in field.metadata if isinstance(item, Expected))
        if kind in RANGE_ERRORS:
            reason = f"expected {expected.range}, got {error['input']}"
        else:
            reason = f"expected {expected.kind}, got {type_name(error['input'])}"
    return ConfigError(path, key, reason)


# The Python types a YAML or JSON value may have, by the type Celery's table declares.
_ACCEPTED: dict[str, tuple[type, ...]] = {
    "bool": (bool,),
    "int": (int,),
    "float": (int, float),
    "string": (str,),
    "str": (str,),
    "bytes": (bytes,),  # YAML's !!binary
    "dict": (dict,),
    "list": (list,),
    # Files give lists; a single module name works too (Celery wraps it in a list).
    "tuple": (list, str),
}
# Where Celery uses a setting more widely than its table declares.
_ALSO_ACCEPTED: dict[str, tuple[type, ...]] = {
    "broker_use_ssl": (dict,),  # SSL options, not only a switch
    "task_default_priority": (int,),
    "task_default_delivery_mode": (int,),  # 1 or 2 as well as "transient" or "persistent"
    "task_default_rate_limit": (int, float),  # tasks a second, as well as "10/m"
    "cassandra_port": (int,),
}


def _accepted_types(name: str, option: Option) -> tuple[type, ...] | None:
    """What a file may give for setting ``name``; None: anything, for Celery to check when it uses it.

    Where Celery declares "any", or a type unknown here (a newer Celery's): no process stops on a setting nobody wrote.
    """
    kind = option.type if isinstance(option.type, str) else option.type.__name__
    if kind not in _ACCEPTED:
        return None
    # The default's type too: `null` where the default is None (unset), a float for
    # `broker_heartbeat_checkrate`, declared an int but 3.0 by default.
    own_default = (type(option.default),) if type(option.default) in TYPE_NAMES else ()
    return tuple(dict.fromkeys((*_ACCEPTED[kind], *own_default, *_ALSO_ACCEPTED.get(name, ()))))


def check_celery_settings(path: Path, celery: Mapping[str, Any]) -> None:
    """Raise ConfigError for a setting Celery does not know, or a value of a type it cannot use."""
    # Built at each check, not at import: in reach of the unit tests and of mutation testing.
    known = {name: _accepted_types(name, option) for name, option in flatten(NAMESPACES) if name.islower()}
    # Read by Celery's loader and its result backends, but missing from its table.
    known.update(override_backends=(dict,), result_backend_thread_safe=(bool,))
    for key, value in celery.items():
        if key not in known:
            raise ConfigError(path, f"celery.{key}", "unknown key (a typo?)")
        if (accepted := known[key]) is None:
            continue
        # bool is an int in Python, but `worker_prefetch_multiplier: true` is a mistake.
        if not isinstance(value, accepted) or (isinstance(value, bool) and bool not in accepted):
            # Every accepted type has a name; "a number" says "an integer" too.
            expected = " or ".join(TYPE_NAMES[kind] for kind in accepted if kind is not int or float not in accepted)
            raise ConfigError(path, f"celery.{key}", f"expected {expected}, got {type_name(value)}")
