"""The application factory and its late binding of Celery (app/__init__.py)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from celery import Celery
from flask import Flask

from app import create_app, create_app_or_exit
from tests import ROOT
from tests.tasks import context_probe
from tests.unit.conftest import EAGER, IN_MEMORY_CONFIG, WriteConfig


def celery_of(app: Flask) -> Celery:
    celery_app: Celery = app.extensions["celery"]
    return celery_app


def config_for(broker_url: str, result_backend: str) -> dict[str, object]:
    return {**IN_MEMORY_CONFIG, "celery": {"broker_url": broker_url, "result_backend": result_backend}}


def test_importing_reads_no_config() -> None:
    """Importing the package and its modules needs no config file: binding happens later."""
    modules = ["app", "app.routes", "app.tasks", "app.celery_app"]
    code = f"import importlib; print([importlib.import_module(m).__name__ for m in {modules}])"
    env = {"FLASK_CONFIG": "/nonexistent/api-config.yaml", "PATH": ""}
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    assert (done.returncode, done.stdout, done.stderr) == (0, f"{modules}\n", "")


def test_celery_is_bound_when_the_app_is_created(write_config: WriteConfig) -> None:
    """The broker and backend are those of the file present at create_app(), not before."""
    write_config(config_for("memory://first", "cache+memory://"))
    first = create_app()
    write_config(config_for("memory://second", "cache+memory://"))
    second = create_app()
    assert celery_of(first).conf.broker_url == "memory://first"
    assert celery_of(second).conf.broker_url == "memory://second"
    assert celery_of(second).conf.result_backend == "cache+memory://"


def test_two_apps_keep_their_own_celery_and_context(write_config: WriteConfig) -> None:
    """Two apps from two files: separate Celery apps, each task in its own app's context."""
    first_file = write_config(name="first.yaml")
    first = create_app({"CELERY": EAGER, "MARKER": "first"})
    second_file = write_config(config_for("memory://other", "cache+memory://"), name="second.json")
    second = create_app({"CELERY": EAGER, "MARKER": "second"})
    assert celery_of(first) is not celery_of(second)
    assert celery_of(first).conf.broker_url == "memory://"
    assert celery_of(second).conf.broker_url == "memory://other"
    for app, marker, path in ((first, "first", first_file), (second, "second", second_file)):
        seen = celery_of(app).tasks[context_probe.name].delay().get()
        assert (seen["marker"], seen["config_file"]) == (marker, str(path))


def test_test_config_wins_and_merges_celery_settings(write_config: WriteConfig) -> None:
    """test_config overrides Flask settings; its CELERY entries add to the file's."""
    write_config()
    app = create_app({"SECRET_KEY": "override", "CELERY": {"task_default_queue": "q"}})
    assert app.config["SECRET_KEY"] == "override"
    assert celery_of(app).conf.task_default_queue == "q"
    assert celery_of(app).conf.broker_url == "memory://"


def test_test_config_without_celery_settings(write_config: WriteConfig) -> None:
    """test_config may leave Celery alone: the file's settings stay."""
    write_config()
    app = create_app({"SECRET_KEY": "other"})
    assert (app.config["SECRET_KEY"], celery_of(app).conf.broker_url) == ("other", "memory://")


def test_celery_app_is_named_after_the_package(app: Flask) -> None:
    """The worker's banner and any task defined in __main__ show the package's name."""
    assert celery_of(app).main == "app"


def test_create_app_or_exit_prints_one_line_and_exits_2(
    write_config: WriteConfig, capsys: pytest.CaptureFixture[str]
) -> None:
    """In-process view of what the entrypoint subprocess tests see: one line on stderr, status 2."""
    path = write_config({**IN_MEMORY_CONFIG, "port": "http"})
    with pytest.raises(SystemExit) as caught:
        create_app_or_exit()
    assert caught.value.code == 2
    assert capsys.readouterr() == (
        "",
        f"error: config error in {path}, key 'port': expected an integer, got a string\n",
    )
