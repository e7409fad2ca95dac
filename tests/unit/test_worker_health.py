"""The worker's heartbeat file (app/observability/worker_health.py)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest
from kombu.asynchronous.timer import Entry

from app.observability import heartbeat_check, worker_health


@pytest.fixture
def heartbeat(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A heartbeat file of this test's own."""
    path = tmp_path / "heartbeat"
    monkeypatch.setenv("WORKER_HEARTBEAT_FILE", str(path))
    return path


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
    assert heartbeat_check.main([]) == 0
    ((seconds, tick),) = consumer.timer.repeating
    os.utime(heartbeat, (0, 0))  # no tick for a long time
    assert heartbeat_check.main([]) == 1
    tick()
    assert (seconds, heartbeat_check.main([])) == (2, 0)


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
    assert heartbeat_check.main([]) == 0
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
