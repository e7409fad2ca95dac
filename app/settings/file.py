"""Reading the config file: YAML or JSON, and the errors that name the file and the key."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import yaml

# How an error names the type of a value read from the file.
TYPE_NAMES: dict[type, str] = {
    bool: "a boolean",
    int: "an integer",
    float: "a number",
    str: "a string",
    bytes: "binary data",
    list: "a list",
    dict: "a mapping",
    type(None): "an empty value",
}


class ConfigError(Exception):
    """The configuration cannot be used; the message names the file and the key."""

    def __init__(self, source: str | os.PathLike[str], key: str | None, reason: str) -> None:
        where = f"{source}, key '{key}'" if key else str(source)
        super().__init__(f"config error in {where}: {reason}")
        self.source, self.key, self.reason = str(source), key, reason


def read_config_file(path: Path) -> dict[str, Any]:
    """Parse a YAML or JSON file (chosen by its suffix) into a mapping."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(path, None, f"cannot read the file: {error.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(path, None, "cannot read the file: it is not UTF-8 text") from None
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except json.JSONDecodeError as error:
        where = f"line {error.lineno}, column {error.colno}"
        raise ConfigError(path, None, f"malformed JSON at {where}: {error.msg}") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise ConfigError(path, None, f"malformed YAML{where}: {problem}") from None
    if not isinstance(data, dict):
        raise ConfigError(path, None, "expected a mapping of keys to values at the top level")
    return data


def type_name(value: Any) -> str:
    """``value``'s type, as an error message names it."""
    return "an empty string" if value == "" else TYPE_NAMES.get(type(value), type(value).__name__)
