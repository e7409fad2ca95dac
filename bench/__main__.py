"""Run every benchmark and print one Markdown table: `python -m bench [--repeat N] [--no-tiers]`.

Services as in the integration tier: TEST_BROKER_URL / TEST_RESULT_BACKEND, else
testcontainers. Compared variants run interleaved (A B A B ...); each figure is the
median, with min-max, over the repetitions.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
from contextlib import ExitStack
from functools import partial
from pathlib import Path

from celery import Celery

from bench import load, pickup, publish, report, tiers, workers
from bench.report import Row, interleave
from bench.services import bench_services
from tests.integration import services


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="repetitions of each variant (default: 5)")
    parser.add_argument("--no-tiers", action="store_true", help="skip timing the test tiers")
    parser.add_argument("--only-dispatch", action="store_true", help="only the publish and POST figures")
    args = parser.parse_args()
    with bench_services() as urls, tempfile.TemporaryDirectory() as folder:
        env = {**os.environ, "FLASK_CONFIG": str(report.write_config(Path(folder), urls))}
        client = report.client(urls)
        rows = dispatch_rows(urls, env, client, args.repeat)
        if not args.only_dispatch:
            rows += worker_rows(env, client, args.repeat) + pickup_rows(urls, Path(folder), args.repeat)
    if not args.no_tiers and not args.only_dispatch:
        rows += [Row(f"{tier}: wall time", "", [seconds], "s") for tier, seconds in tiers.wall_times().items()]
    print(f"{platform.node()}: {os.cpu_count()} cores, Python {platform.python_version()}, {urls.source}\n")
    print(report.table(rows))


def dispatch_rows(urls: services.Services, env: dict[str, str], client: Celery, repeat: int) -> list[Row]:
    """The publish ceiling, POST /task/ against bare delay() views, and end to end."""

    def post(url: str, clients: int, idempotent: bool = False) -> dict[str, float]:
        result = load.wrk_post(url, clients, idempotent=idempotent)
        client.control.purge()  # no worker runs: keep the broker's backlog from growing
        return result

    raw = interleave(
        repeat,
        {
            "confirms off": partial(publish.raw_publish_rate, urls.broker_url, False),
            "confirms on": partial(publish.raw_publish_rate, urls.broker_url, True),
        },
    )
    rows = [
        Row("raw kombu publish, 1 process", variant, rates, "msg/s", ceiling=True) for variant, rates in raw.items()
    ]
    with ExitStack() as stack:
        ours = stack.enter_context(load.served("app:create_app()", env, 8191))
        bare = stack.enter_context(load.served("bench.bare_web:create_app(confirms=False)", env, 8192))
        bare_confirmed = stack.enter_context(load.served("bench.bare_web:create_app(confirms=True)", env, 8193))
        for clients in (1, 16):
            runs = interleave(
                repeat,
                {
                    "POST /task/ (confirms, id record)": partial(post, ours, clients),
                    "POST /task/ with an Idempotency-Key": partial(post, ours, clients, idempotent=True),
                    "bare delay() view, confirms on": partial(post, bare_confirmed, clients),
                    "bare delay() view, confirms off": partial(post, bare, clients),
                },
            )
            for variant, results in runs.items():
                rows.append(
                    Row(f"POST, {clients} concurrent", variant, [r["rate"] for r in results], "req/s", dispatch=True)
                )
                rows.append(Row(f"POST latency p50, {clients} concurrent", variant, [r["p50"] for r in results], "ms"))
                rows.append(Row(f"POST latency p99, {clients} concurrent", variant, [r["p99"] for r in results], "ms"))
        with workers.worker("app context", "prefork", env, "bench", client):
            rates = [load.end_to_end(ours) for _ in range(repeat)]
        rows.append(
            Row("end to end: 1000 tasks POSTed and polled", "prefork worker x2", rates, "tasks/s", dispatch=True)
        )
    return rows


def worker_rows(env: dict[str, str], client: Celery, repeat: int) -> list[Row]:
    """No-op task throughput through the app-context Task and through bare Celery, per pool."""
    rows = []
    for pool in ("solo", "prefork"):
        runs = interleave(
            repeat,
            {variant: partial(workers.drain_rate, variant, pool, env, client) for variant in workers.APPS},
        )
        rows += [Row(f"worker, no-op task, {pool}", variant, rates, "tasks/s") for variant, rates in runs.items()]
    return rows


def pickup_rows(urls: services.Services, folder: Path, repeat: int) -> list[Row]:
    """Idle worker, RabbitMQ: publish to task start, and the drain rate, one process of each pool."""
    runs = interleave(
        repeat,
        {pool: partial(pickup.measure, urls, folder, pool, 200, 500) for pool in ("prefork", "solo", "threads")},
    )
    rows = []
    for pool, results in runs.items():
        rows.append(Row("pick-up p50, idle worker", pool, [statistics.median(r["delays"]) for r in results], "ms"))
        rows.append(Row("pick-up p99, idle worker", pool, [pickup.percentile(r["delays"], 99) for r in results], "ms"))
        rows.append(Row("drain 500 no-ops, 1 process", pool, [r["rate"] for r in results], "tasks/s"))
    return rows


if __name__ == "__main__":
    main()
