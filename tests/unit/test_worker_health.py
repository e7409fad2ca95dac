"""The worker's heartbeat file and its health check (app/observability/worker_health.py)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest
from freezegun import freeze_time
from kombu.asynchronous.timer import Entry

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


class Timer:
    """The consumer's event-loop timer, as the step uses it: what it was asked to call, and how often."""

    def __init__(self) -> None:
        self.repeating: list[tuple[float, Entry]] = []

    def call_repeatedly(self, seconds: float, function: Callable[[], object]) -> Entry:
        entry = Entry(function)  # what kombu's timer answers: entry() runs it, entry.cancel() stops it
        self.repeating.append((seconds, entry))
        return entry


@pytest.fixture
def consumer() -> SimpleNamespace:
    """A stand-in for the worker's consumer: the step uses only its timer."""
    return SimpleNamespace(timer=Timer())


def test_the_file_is_touched_as_the_consumer_starts_then_every_2_s(heartbeat: Path, consumer: SimpleNamespace) -> None:
    """Started: the check passes at once; each 2-s tick of the event loop makes a stale file fresh again."""
    step = worker_health.HeartbeatFile(consumer)
    step.start(consumer)
    assert worker_health.main([]) == 0
    ((seconds, tick),) = consumer.timer.repeating
    os.utime(heartbeat, (0, 0))  # no tick for a long time
    assert worker_health.main([]) == 1
    tick()
    assert (seconds, worker_health.main([])) == (2, 0)


def test_stopping_the_consumer_stops_the_touches(heartbeat: Path, consumer: SimpleNamespace) -> None:
    """Stopped (to reconnect to the broker, or for good), then shut down: the timer entry is cancelled, no error."""
    step = worker_health.HeartbeatFile(consumer)
    step.start(consumer)
    step.stop(consumer)
    step.shutdown(consumer)  # Celery shuts down the steps of a consumer it stopped
    ((_, tick),) = consumer.timer.repeating
    assert tick.canceled


def test_a_consumer_restarted_touches_the_file_again(heartbeat: Path, consumer: SimpleNamespace) -> None:
    """Reconnected to the broker, the consumer starts its steps again: a fresh file, a new timer entry."""
    step = worker_health.HeartbeatFile(consumer)
    step.start(consumer)
    step.stop(consumer)
    heartbeat.unlink()
    step.start(consumer)
    assert worker_health.main([]) == 0
    assert [tick.canceled for _, tick in consumer.timer.repeating] == [True, False]


def test_a_step_stopped_before_it_started_does_nothing(heartbeat: Path, consumer: SimpleNamespace) -> None:
    """The broker unreachable before the step started: Celery stops every step to retry, this one included."""
    step = worker_health.HeartbeatFile(consumer)
    step.stop(consumer)
    assert (consumer.timer.repeating, heartbeat.exists()) == ([], False)


def test_the_file_is_the_one_named_when_the_worker_started(
    tmp_path: Path, heartbeat: Path, consumer: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """WORKER_HEARTBEAT_FILE changed later in the worker's process (a test's, say) does not move the heartbeat."""
    step = worker_health.HeartbeatFile(consumer)
    monkeypatch.setenv("WORKER_HEARTBEAT_FILE", str(tmp_path / "another"))
    step.start(consumer)
    assert (heartbeat.exists(), (tmp_path / "another").exists()) == (True, False)
