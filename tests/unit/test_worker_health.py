"""The worker's heartbeat file and its health check (app/observability/worker_health.py)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from app.observability import worker_health


@pytest.fixture
def heartbeat(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A heartbeat file of this test's own."""
    path = tmp_path / "heartbeat"
    monkeypatch.setenv("WORKER_HEARTBEAT_FILE", str(path))
    return path


@pytest.mark.parametrize(
    ("age", "stale_after", "status"),
    [(0, None, 0), (9.5, None, 0), (10.5, None, 1), (2.5, "2", 1)],
    ids=["fresh", "just-fresh", "stale-after-10-s", "stale-after-the-given-seconds"],
)
def test_the_check_passes_while_the_heartbeat_is_fresh(
    heartbeat: Path, capsys: pytest.CaptureFixture[str], age: float, stale_after: str | None, status: int
) -> None:
    """0 while the file is younger than --stale-after (10 s by default); 1 after, saying how old."""
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
