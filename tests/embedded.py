"""config/embedded.yaml as the tests use it: its broker and results in a folder of the test's own."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tests import ROOT
from tests.integration.services import free_port


def write_embedded_config(folder: Path, **changes: Any) -> Path:
    """The shipped embedded config, its folders under `folder`, with top-level `changes`; returns its path."""
    config = yaml.safe_load((ROOT / "config" / "embedded.yaml").read_text())
    folders = {name: folder / name for name in ("queue", "control", "results")}
    for path in folders.values():
        path.mkdir()
    config["celery"]["broker_transport_options"].update(
        data_folder_in=str(folders["queue"]),
        data_folder_out=str(folders["queue"]),
        control_folder=str(folders["control"]),
    )
    config["celery"]["result_backend"] = f"file://{folders['results']}"
    path = folder / "api-config.yaml"
    # The internal port on a free port: never one another run of the tests listens on.
    path.write_text(yaml.safe_dump({**config, "internal_port": free_port(), **changes}))
    path.chmod(0o600)
    return path
