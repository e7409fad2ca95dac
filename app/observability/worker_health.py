"""A worker's health: a file (``WORKER_HEARTBEAT_FILE``, one per worker) its event loop touches every 2 s.

heartbeat_check.py reads it: cheaper than ``celery inspect ping``, a Celery and a broker round trip a check.
"""

from __future__ import annotations

from typing import Any

from celery import bootsteps

from app.observability.heartbeat_check import heartbeat_file

TOUCH_SECONDS = 2


class HeartbeatFile(bootsteps.StartStopStep):  # type: ignore[misc]
    """A consumer step: while the worker consumes, its event loop's timer touches the file."""

    # Started once the broker is connected: a worker that cannot reach it has no heartbeat.
    requires = ("celery.worker.consumer:Connection",)
    entry: Any = None

    def __init__(self, consumer: Any, **kwargs: Any) -> None:
        self.path = heartbeat_file()  # the worker's, as it starts
        super().__init__(consumer, **kwargs)

    def start(self, consumer: Any) -> None:
        self.path.touch()
        self.entry = consumer.timer.call_repeatedly(TOUCH_SECONDS, self.path.touch)

    def stop(self, consumer: Any) -> None:
        if self.entry is not None:
            self.entry.cancel()

    shutdown = stop
