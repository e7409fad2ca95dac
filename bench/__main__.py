"""Run every benchmark and print one Markdown table: `python -m bench [--repeat N] [--only SECTION ...]`.

Services as in the integration tier: TEST_BROKER_URL / TEST_RESULT_BACKEND, else
testcontainers. Compared variants run interleaved (A B A B ...); each figure is the
median, with min-max, over the repetitions.
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable
from dataclasses import replace
from functools import partial

from bench import defaults, dispatch, pickup, post_auth, post_cost, profile, soak, tiers, workers
from bench.report import Bench, Row, bench_session, header, interleave, table


def worker_rows(bench: Bench) -> list[Row]:
    """No-op task throughput through the app-context Task and through bare Celery, per pool."""
    rows = []
    for pool in ("solo", "prefork"):
        runs = interleave(
            bench.repeat,
            {variant: partial(workers.drain_rate, variant, pool, bench.env, bench.client) for variant in workers.APPS},
        )
        rows += [Row(f"worker, no-op task, {pool}", variant, rates, "tasks/s") for variant, rates in runs.items()]
    return rows


def pickup_rows(bench: Bench) -> list[Row]:
    """Idle worker, RabbitMQ: publish to task start, and the drain rate, one process of each pool."""
    runs = interleave(
        bench.repeat,
        {
            pool: partial(pickup.measure, bench.urls, bench.folder, pool, 200, 500)
            for pool in ("prefork", "solo", "threads")
        },
    )
    rows = []
    for pool, results in runs.items():
        rows.append(Row("pick-up p50, idle worker", pool, [statistics.median(r["delays"]) for r in results], "ms"))
        rows.append(Row("pick-up p99, idle worker", pool, [pickup.percentile(r["delays"], 99) for r in results], "ms"))
        rows.append(Row("drain 500 no-ops, 1 process", pool, [r["rate"] for r in results], "tasks/s"))
    return rows


def defaults_rows(bench: Bench) -> list[Row]:
    """Each safety default's cost to a prefork worker, as ratios to bare Celery with Celery's own defaults."""
    found = defaults.rows(bench.urls, bench.folder, bench.client, bench.repeat)
    return [replace(row, reference=defaults.BARE) if row.unit == "tasks/s" else row for row in found]


def tier_rows(bench: Bench) -> list[Row]:
    """Wall time of each test tier, run once as users run it."""
    return [Row(f"{tier}: wall time", "", [seconds], "s") for tier, seconds in tiers.wall_times().items()]


SECTIONS: dict[str, Callable[[Bench], list[Row]]] = {
    "dispatch": dispatch.rows,
    "post": post_cost.rows,
    "auth": post_auth.rows,
    "profile": profile.rows,
    "workers": worker_rows,
    "defaults": defaults_rows,
    "pickup": pickup_rows,
    "soak": soak.rows,
    "tiers": tier_rows,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="repetitions of each variant (default: 3)")
    parser.add_argument("--only", nargs="+", choices=SECTIONS, default=list(SECTIONS), help="these sections only")
    args = parser.parse_args()
    rows = []
    with bench_session(args.repeat) as bench:
        print(f"{header(bench.urls.source)}\n")
        for section in args.only:
            found = SECTIONS[section](bench)
            print(f"## {section}\n\n{table(found)}\n", flush=True)
            rows += found
    print(f"## all\n\n{table(rows)}")


if __name__ == "__main__":
    main()
