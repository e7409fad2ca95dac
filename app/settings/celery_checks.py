"""The file's ``celery`` section, checked against Celery's own table of settings.

Celery takes any key and any value until it uses them: a typo (``brokerurl``) silently
falls back to a default, and ``worker_prefetch_multiplier: "lots"`` lets the web app
start, then kills the worker with a traceback. ``celery.app.defaults`` declares every
setting and its type, so both mistakes stop every process at startup instead, with one
line naming the file and the key.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from celery.app.defaults import NAMESPACES, Option, flatten

from app.settings.file import TYPE_NAMES, ConfigError, type_name

# The Python types a YAML or JSON value may have, by the type Celery declares.
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
    """What a file may give for setting ``name``; None: anything.

    Anything where Celery declares "any", and where it declares a type this table does not
    know (a newer Celery's): Celery checks such a value when it uses it, as it would
    without this check, rather than every process stopping on a setting nobody wrote.
    """
    kind = option.type if isinstance(option.type, str) else option.type.__name__
    if kind not in _ACCEPTED:
        return None
    # The default's type too: `null` where the default is None (unset), a float for
    # `broker_heartbeat_checkrate`, declared an int but 3.0 by default.
    own_default = (type(option.default),) if type(option.default) in TYPE_NAMES else ()
    return tuple(dict.fromkeys((*_ACCEPTED[kind], *own_default, *_ALSO_ACCEPTED.get(name, ()))))


def _settings() -> dict[str, tuple[type, ...] | None]:
    """Every setting a file may give, with what it may give for each.

    Built at each check, not at import (a few hundred entries, once per process start):
    what it is built from then stays in reach of the unit tests and of mutation testing.
    """
    settings = {name: _accepted_types(name, option) for name, option in flatten(NAMESPACES) if name.islower()}
    # Read by Celery's loader and its result backends, but missing from its table.
    settings["override_backends"] = (dict,)
    settings["result_backend_thread_safe"] = (bool,)
    return settings


def check_celery_settings(path: Path, celery: Mapping[str, Any]) -> None:
    """Raise ConfigError for a setting Celery does not know, or a value of a type it cannot use."""
    known = _settings()
    for key, value in celery.items():
        if key not in known:
            raise ConfigError(path, f"celery.{key}", "unknown key (a typo?)")
        if (accepted := known[key]) is None:
            continue
        # bool is an int in Python, but `worker_prefetch_multiplier: true` is a mistake.
        if not isinstance(value, accepted) or (isinstance(value, bool) and bool not in accepted):
            # "a number" says "an integer" too.
            names = [
                TYPE_NAMES.get(kind, kind.__name__) for kind in accepted if kind is not int or float not in accepted
            ]
            expected = " or ".join(names)
            raise ConfigError(path, f"celery.{key}", f"expected {expected}, got {type_name(value)}")
