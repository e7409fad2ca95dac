"""The file's ``celery`` section, checked against Celery's own table of settings (``celery.app.defaults``).

Celery takes any key and any value until it uses them: a typo (``brokerurl``) silently falls back
to a default, and ``worker_prefetch_multiplier: "lots"`` starts the web app, then kills the worker.
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
