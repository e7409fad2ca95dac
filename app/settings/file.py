"""Reading the config file: YAML or JSON, the folders it names, and the errors that name the file and the key."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

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


def local_folders(path: Path, celery: dict[str, Any]) -> dict[str, Any]:
    """``celery`` with its file result backend's and filesystem broker's folders made; relative ones from the file's.

    Taken from where a process starts, ``var/results`` would be another folder wherever the
    web app and the worker start, and a missing one would fail the first request (500).
    """
    base, celery = path.absolute().parent, dict(celery)
    folders: dict[str, Path] = {}  # the key that names each, for errors
    if (backend := celery["result_backend"]).startswith("file://"):
        # Celery's own reading of the URL (FilesystemBackend._find_path).
        folder = base / (backend[16:] if backend.startswith("file://localhost/") else backend[7:])
        celery["result_backend"], folders["celery.result_backend"] = f"file://{folder}", folder
    if urlsplit(celery["broker_url"]).scheme == "filesystem":
        options = dict(celery.get("broker_transport_options", {}))
        # The folders of kombu's filesystem transport.
        for key in ("data_folder_in", "data_folder_out", "control_folder", "processed_folder"):
            if isinstance(options.get(key), str):
                folders[f"celery.broker_transport_options.{key}"] = folder = base / options[key]
                options[key] = str(folder)
        celery["broker_transport_options"] = options
    for key, folder in folders.items():
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ConfigError(path, key, f"cannot create the folder {folder}: {error.strerror}") from None
    return celery


def type_name(value: Any) -> str:
    """``value``'s type, as an error message names it."""
    return "an empty string" if value == "" else TYPE_NAMES.get(type(value), type(value).__name__)
