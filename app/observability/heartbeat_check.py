"""A worker's health check: 0 while its heartbeat file is fresh, 1 once it is older than --stale-after (10 s).

The container's health check, run by path (``python3 -I app/observability/heartbeat_check.py``)
so that only the standard library loads, not the ``app`` package with Flask and Celery
(the template's docs/benchmarks.md). A worker frozen, stuck holding its event loop or
reconnecting stops touching the file (worker_health.py).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path


def heartbeat_file() -> Path:
    return Path(os.environ.get("WORKER_HEARTBEAT_FILE") or "/tmp/celery-worker-heartbeat")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--stale-after", type=float, default=10, help="seconds (default: %(default)s)")
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
