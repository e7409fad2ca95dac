"""The worker's heartbeat file and its health check (app/observability/worker_health.py)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from freezegun import freeze_time

from app.observability import worker_health


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
    assert worker_health.main([] if stale_after is None else ["--stale-after", stale_after]) == status
    message = capsys.readouterr().err
    assert message == ("" if status == 0 else f"unhealthy: last heartbeat {age:.1f} s ago ({heartbeat})\n")


def test_no_heartbeat_yet_is_unhealthy(heartbeat: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A worker that never started consuming has no file: unhealthy, saying so."""
    assert worker_health.main([]) == 1
    assert capsys.readouterr().err == f"unhealthy: no heartbeat at {heartbeat} (not started yet?)\n"


def test_the_default_file_is_in_tmp(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without WORKER_HEARTBEAT_FILE: /tmp, writable by the image's unprivileged user."""
    monkeypatch.delenv("WORKER_HEARTBEAT_FILE")
    assert worker_health.heartbeat_file() == Path("/tmp/celery-worker-heartbeat")


def test_the_check_says_what_it_does(capsys: pytest.CaptureFixture[str]) -> None:
    """--help: the module's first line, and the option's default."""
    with pytest.raises(SystemExit) as exited:
        worker_health.main(["--help"])
    assert exited.value.code == 0
    help_text = " ".join(capsys.readouterr().out.split())  # wrapped to the terminal's width
    assert "A worker's health: a file its event loop touches every 2 s, and a check of the file's age." in help_text
    assert "--stale-after STALE_AFTER seconds (default: 10)" in help_text


def test_the_check_runs_without_docstrings(heartbeat: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Under `python -OO` (PYTHONOPTIMIZE=2) the module has no docstring: the check still answers."""
    monkeypatch.setattr(worker_health, "__doc__", None)
    heartbeat.touch()
    assert worker_health.main([]) == 0
