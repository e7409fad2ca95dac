"""GET /task/<id> through Flask's test client: how many a second one process answers (Redis results).

`python -m bench.status_read`: the services as the integration tier finds them
(TEST_BROKER_URL / TEST_RESULT_BACKEND, else containers). No HTTP server and no worker:
the view, the app's request handling and the result backend's reads only.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import yaml

from bench.services import bench_services


def reads_per_second(config: Path, count: int) -> float:
    """GETs a second of one stored PENDING task, in this process."""
    os.environ["FLASK_CONFIG"] = str(config)
    from app import create_app

    app = create_app()
    logging.disable(logging.INFO)  # one access line a request would be timed too
    backend = app.extensions["celery"].backend
    task_id = str(uuid.uuid4())
    backend.store_result(task_id, None, "PENDING")
    client = app.test_client()
    try:
        started = time.perf_counter()
        for _ in range(count):
            client.get(f"/task/{task_id}")
        return count / (time.perf_counter() - started)
    finally:
        backend.forget(task_id)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000, help="GETs a round (default: 2000)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds (default: 5)")
    args = parser.parse_args()
    with bench_services() as urls, tempfile.TemporaryDirectory() as folder:
        config = Path(folder) / "bench.yaml"
        settings = {"broker_url": urls.broker_url, "result_backend": urls.result_backend}
        config.write_text(yaml.safe_dump({"secret_key": "bench-status-read", "celery": settings}))
        config.chmod(0o600)
        rates = [reads_per_second(config, args.count) for _ in range(args.rounds)]
    print(f"GET /task/<id>: {statistics.median(rates):,.0f} a second (median; {min(rates):,.0f}-{max(rates):,.0f})")


if __name__ == "__main__":
    main()
