"""A worker's health: a file its event loop touches every 2 s, and a check of the file's age.

The check, ``python -m app.observability.worker_health``, runs as a process of its own
(the container's health check): it answers 0 while the file is fresh, 1 once it is older
than ``--stale-after`` seconds (10). A worker that is frozen, stuck in a task that holds
its event loop, or reconnecting to a broker it lost stops touching it. Cheaper than
``celery inspect ping`` (a Python with Celery and a broker round trip every few seconds).
One file per worker: ``WORKER_HEARTBEAT_FILE`` (default ``/tmp/celery-worker-heartbeat``)
names it; give each worker its own when several share a filesystem.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from celery import bootsteps

DEFAULT_FILE = "/tmp/celery-worker-heartbeat"
TOUCH_SECONDS = 2
STALE_SECONDS = 10


def heartbeat_file() -> Path:
    """Where this worker's heartbeat is (WORKER_HEARTBEAT_FILE, else the default)."""
    return Path(os.environ.get("WORKER_HEARTBEAT_FILE") or DEFAULT_FILE)


class HeartbeatFile(bootsteps.StartStopStep):  # type: ignore[misc]
    """A consumer step: while the worker consumes, its event loop's timer touches the file."""

    # Started once the broker is connected: a worker that cannot reach it has no heartbeat.
    requires = ("celery.worker.consumer:Connection",)

    def __init__(self, consumer: Any, **kwargs: Any) -> None:
        self.entry: Any = None
        self.path = heartbeat_file()  # the worker's, as it starts
        super().__init__(consumer, **kwargs)

    def start(self, consumer: Any) -> None:
        self.path.touch()
        self.entry = consumer.timer.call_repeatedly(TOUCH_SECONDS, self.path.touch)

    def stop(self, consumer: Any) -> None:
        if self.entry is not None:
            self.entry.cancel()
            self.entry = None

    shutdown = stop


def main(argv: list[str] | None = None) -> int:
    """0 if the heartbeat is fresh; else 1, saying how old it is (or that there is none)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--stale-after", type=float, default=STALE_SECONDS, help="seconds (default: %(default)s)")
    args = parser.parse_args(argv)
    path = heartbeat_file()
    try:
        age = time.time() - path.stat().st_mtime
    except FileNotFoundError:
        print(f"unhealthy: no heartbeat at {path} (not started yet?)", file=sys.stderr)
        return 1
    if age > args.stale_after:
        print(f"unhealthy: last heartbeat {age:.1f} s ago ({path})", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
