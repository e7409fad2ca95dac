"""The worker's health check (app/observability/heartbeat_check.py): the heartbeat file's age, read cheaply."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from freezegun import freeze_time

from app.observability import heartbeat_check
from tests import ROOT


@pytest.fixture
def heartbeat(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A heartbeat file of this test's own."""
    path = tmp_path / "heartbeat"
    monkeypatch.setenv("WORKER_HEARTBEAT_FILE", str(path))
    return path


@freeze_time("2026-11-30 12:00:00")  # the file's age to the fraction: the check reads the clock after the test
@pytest.mark.parametrize(
    ("age", "stale_after", "status"),
    [(0, None, 0), (9.5, None, 0), (10, None, 0), (10.5, None, 1), (2.5, "2", 1)],
    ids=["fresh", "just-fresh", "exactly-10-s", "stale-after-10-s", "stale-after-the-given-seconds"],
)
def test_the_check_passes_while_the_heartbeat_is_fresh(
    heartbeat: Path, capsys: pytest.CaptureFixture[str], age: float, stale_after: str | None, status: int
) -> None:
    """0 while the file is no older than --stale-after (10 s by default); 1 after, saying how old."""
    heartbeat.touch()
    os.utime(heartbeat, (time.time() - age, time.time() - age))
    assert heartbeat_check.main([] if stale_after is None else ["--stale-after", stale_after]) == status
    message = capsys.readouterr().err
    assert message == ("" if status == 0 else f"unhealthy: last heartbeat {age:.1f} s ago ({heartbeat})\n")


def test_no_heartbeat_yet_is_unhealthy(heartbeat: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A worker that never started consuming has no file: unhealthy, saying so."""
    assert heartbeat_check.main([]) == 1
    assert capsys.readouterr().err == f"unhealthy: no heartbeat at {heartbeat} (not started yet?)\n"


def test_the_default_file_is_in_tmp(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without WORKER_HEARTBEAT_FILE: /tmp, writable by the image's unprivileged user."""
    monkeypatch.delenv("WORKER_HEARTBEAT_FILE")
    assert heartbeat_check.heartbeat_file() == Path("/tmp/celery-worker-heartbeat")


def test_the_check_says_what_it_does(capsys: pytest.CaptureFixture[str]) -> None:
    """--help: the module's first line, and the option's default."""
    with pytest.raises(SystemExit) as exited:
        heartbeat_check.main(["--help"])
    assert exited.value.code == 0
    help_text = " ".join(capsys.readouterr().out.split())  # wrapped to the terminal's width
    assert "A worker's health check: 0 while its heartbeat file is fresh, 1 once it is older than" in help_text
    assert "--stale-after STALE_AFTER seconds (default: 10)" in help_text


def test_the_check_runs_without_docstrings(heartbeat: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Under `python -OO` (PYTHONOPTIMIZE=2) the module has no docstring: the check still answers."""
    monkeypatch.setattr(heartbeat_check, "__doc__", None)
    heartbeat.touch()
    assert heartbeat_check.main([]) == 0


def test_the_check_as_compose_runs_it_loads_only_the_standard_library(heartbeat: Path) -> None:
    """By path, as docker-compose.yml runs it: no Flask, Celery or kombu loaded (0.5 s of CPU each check)."""
    heartbeat.touch()
    probe = (
        "import runpy, sys; sys.argv = ['heartbeat_check.py']\n"
        "try:\n    runpy.run_path('app/observability/heartbeat_check.py', run_name='__main__')\n"
        "except SystemExit as exited:\n"
        "    loaded = {name.split('.')[0] for name in sys.modules}\n"
        "    print(exited.code, sorted(loaded & {'app', 'celery', 'flask', 'kombu'}))"
    )
    result = subprocess.run([sys.executable, "-I", "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout == "0 []\n", result.stderr
