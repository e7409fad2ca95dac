"""The folders of the file result backend and the filesystem broker (app/settings/file.py, local_folders)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from app import create_app
from app.settings import ConfigError, load_config
from tests import ROOT
from tests.unit.conftest import EAGER, IN_MEMORY_CONFIG, WriteConfig
from tests.unit.test_config import config_with


@pytest.fixture
def embedded_copy(tmp_path: Path) -> Path:
    """config/embedded.yaml copied into `tmp_path`/config, as in the repository: its ../var is `tmp_path`/var."""
    (tmp_path / "config").mkdir()
    return Path(shutil.copy(ROOT / "config" / "embedded.yaml", tmp_path / "config"))


def test_the_embedded_pair_works_started_from_another_folder(
    embedded_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Started elsewhere, the embedded config's folders are beside it (made at startup): POST 202, then SUCCESS."""
    (elsewhere := tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.setenv("FLASK_CONFIG", str(embedded_copy))
    monkeypatch.setenv("FLASK_SECRET_KEY", "s")
    client = create_app({"CELERY": EAGER}).test_client()
    response = client.post("/task/", json={"seconds": 0})
    assert response.status_code == 202, response.json
    assert client.get(response.headers["Location"]).json["state"] == "SUCCESS"
    assert sorted(path.name for path in (tmp_path / "var").iterdir()) == ["broker", "broker-control", "results"]
    assert list(elsewhere.iterdir()) == []


def test_relative_folders_are_taken_from_the_config_files_folder(
    embedded_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A relative FLASK_CONFIG too: every folder becomes the absolute one beside the file."""
    monkeypatch.chdir(tmp_path)
    celery = load_config({"FLASK_CONFIG": "config/embedded.yaml", "FLASK_SECRET_KEY": "s"})["CELERY"]
    var = tmp_path / "config" / ".." / "var"
    assert celery["result_backend"] == f"file://{var / 'results'}"
    options = celery["broker_transport_options"]
    folders = [options[key] for key in ("data_folder_in", "data_folder_out", "control_folder")]
    assert folders == [str(var / "broker"), str(var / "broker"), str(var / "broker-control")]
    assert options["polling_interval"] == 0.1  # the other options kept


@pytest.mark.parametrize("url", ["file://{folder}", "file://localhost{folder}"], ids=["absolute", "localhost"])
def test_absolute_result_folders_stay_and_are_made(write_config: WriteConfig, tmp_path: Path, url: str) -> None:
    """`file:///path` and `file://localhost/path` (Celery reads both) name the same folder, made at startup."""
    folder = tmp_path / "results"
    celery = {**IN_MEMORY_CONFIG["celery"], "result_backend": url.format(folder=folder)}
    settings = load_config({"FLASK_CONFIG": str(write_config(config_with(celery=celery)))})
    assert settings["CELERY"]["result_backend"] == f"file://{folder}"
    assert folder.is_dir()


def test_a_filesystem_brokers_processed_folder_is_taken_from_the_file_and_made(write_config: WriteConfig) -> None:
    """`processed_folder` (kombu keeps consumed messages there with `store_processed`) is resolved and made too."""
    options = {"store_processed": True, "processed_folder": "var/processed"}
    celery = {**IN_MEMORY_CONFIG["celery"], "broker_url": "filesystem://", "broker_transport_options": options}
    settings = load_config({"FLASK_CONFIG": str(write_config(config_with(celery=celery)))})
    folder = Path(settings["CONFIG_FILE"]).parent / "var" / "processed"
    assert settings["CELERY"]["broker_transport_options"] == {**options, "processed_folder": str(folder)}
    assert folder.is_dir()


def test_transport_folders_of_another_broker_are_left_alone(write_config: WriteConfig) -> None:
    """`data_folder_in` means nothing to RabbitMQ: it is neither resolved nor made."""
    options = {"data_folder_in": "nowhere"}
    celery = {**IN_MEMORY_CONFIG["celery"], "broker_url": "amqp://h//", "broker_transport_options": options}
    settings = load_config({"FLASK_CONFIG": str(write_config(config_with(celery=celery)))})
    assert settings["CELERY"]["broker_transport_options"] == options
    assert not (Path(settings["CONFIG_FILE"]).parent / "nowhere").exists()


def test_a_filesystem_broker_without_options_keeps_kombus_defaults(write_config: WriteConfig) -> None:
    """No `broker_transport_options`: none are made up (kombu's own folder names apply)."""
    celery = {**IN_MEMORY_CONFIG["celery"], "broker_url": "filesystem://"}
    settings = load_config({"FLASK_CONFIG": str(write_config(config_with(celery=celery)))})
    assert settings["CELERY"]["broker_transport_options"] == {}


@pytest.mark.parametrize(
    ("celery", "key", "folder"),
    [
        ({"result_backend": "file://blocker/results"}, "celery.result_backend", "blocker/results"),
        (
            {"broker_url": "filesystem://", "broker_transport_options": {"data_folder_in": "blocker/queue"}},
            "celery.broker_transport_options.data_folder_in",
            "blocker/queue",
        ),
    ],
    ids=["result-backend", "transport-folder"],
)
def test_a_folder_that_cannot_be_made_names_its_key(
    write_config: WriteConfig, tmp_path: Path, celery: dict[str, Any], key: str, folder: str
) -> None:
    """A folder under a file: one ConfigError naming the file, the key and the folder."""
    (tmp_path / "blocker").write_text("a file, not a folder")
    path = write_config(config_with(celery={**IN_MEMORY_CONFIG["celery"], **celery}))
    with pytest.raises(ConfigError) as caught:
        load_config({"FLASK_CONFIG": str(path)})
    reason = f"cannot create the folder {tmp_path / folder}: Not a directory"
    assert str(caught.value) == f"config error in {path}, key '{key}': {reason}"
