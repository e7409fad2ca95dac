"""Memory under sustained load: 50,000 POSTs with GETs through gunicorn while a worker runs the tasks.

    python -m bench.soak [--posts 50000] [--warmup 2000] [--again]

Why: a leak that grows a little with every task (celery#4983: the web process subscribed
to each task's result channel, and the replies nobody read piled up in Redis's output
buffer for its connection) never shows in a benchmark of a few seconds, only after tens
of thousands of tasks. The target: each figure below grows by less than 10 MB.

How: gunicorn (2 sync workers) serves create_app(), a prefork worker (2 processes)
consumes queue "bench" (the bench config: the sample task sleeps 0), and wrk (16
connections, `Connection: close` as in bench/load.py) sends a POST /task/, then a GET of
the Location a POST answered, in turn, until the POSTs answered reach --posts
(bench/soak_wrk.py). First a warm-up of --warmup POSTs, so that imports, connection pools
and allocators have settled; then the worker drains the queue and the start figures are
taken; then the run, the drain (until the queue is empty, at most 5 minutes), and the end
figures (bench/soak_figures.py):

- the RSS of the gunicorn workers (the master's children, summed), of the Celery worker's
  main process and of its pool processes (summed), and their open file descriptors (a
  leaked connection shows there first);
- Redis: the output buffers (omem, CLIENT LIST) of the web's and the worker's connections,
  summed, the largest tot-mem among them and their number (told apart by address from
  other users of the server); INFO used_memory (the whole server), and again once the
  run's result records are deleted: they stay a day (result_expires), growth by design,
  while what remains would be a leak; the omem of every client; the keys in the results db
  and their size (MEMORY USAGE of a sample, times their number);
- RabbitMQ: the messages ready in queue "bench" (a passive declare's message count).

The worker's main process keeps each task's time-limit timers, cancelled or not, and what
they reference, until they are due (task_time_limit: celery#1427, celery#5200), so its
RSS grows with the task rate over the last task_time_limit seconds; once they are due the
memory is free again, though the RSS stays. `--again` tells that from a leak: it waits
them out after the end figures, runs as many POSTs again, and measures the main process's
RSS over that second run.

A gunicorn worker or pool process replaced during the run (its memory would start over)
fails the run. What the run leaves is removed, on failure too: the result records that
were not there before it (the keys `celery-task-meta-*` of the results db) and the
messages of queue "bench"; the processes are stopped. Services as for `python -m bench`
(TEST_BROKER_URL / TEST_RESULT_BACKEND, else containers). MB is 10^6 bytes. On a shared
machine the figures are indicative: used_memory counts every db of the Redis server.
"""

from __future__ import annotations

import argparse
import socket
import time
from contextlib import ExitStack
from dataclasses import dataclass

import redis
from celery import Celery

from app.settings.celery_defaults import CELERY_DEFAULTS
from bench import load, report, workers
from bench.leftovers import delete_new_results, result_keys
from bench.report import QUEUE, Bench, Row, bench_session
from bench.soak_figures import MAIN_RSS, MB, USED_MEMORY, Processes, drain, figures, rss
from bench.soak_wrk import CLIENTS, Answered, wrk_soak
from tests.integration.services import Services

POSTS = 50_000
WARMUP = 2_000
LIMIT_MB = 10  # the target: growth under 10 MB a figure
# The worker's main process keeps a timer for each task's time limits until they are due.
LINGER_SECONDS = CELERY_DEFAULTS["task_time_limit"] + 15


@dataclass(frozen=True)
class Measure:
    """One figure, at the start and at the end of the run."""

    name: str
    unit: str
    start: float
    end: float

    @property
    def growth(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class Soak:
    """A soak run's figures, and how much load it took."""

    measures: list[Measure]
    answered: Answered


def _second_run(base_url: str, posts: int, broker_url: str, processes: Processes, port: int) -> float:
    """The worker's main process's RSS after `posts` more, run once the first run's time-limit timers are due.

    Its RSS does not fall when they are due; if the second run grows it again, it leaks.
    """
    time.sleep(LINGER_SECONDS)
    wrk_soak(base_url, posts)
    drain(broker_url)
    processes.check_unchanged(port)
    return rss(processes.worker[:1])


def soak(
    urls: Services, env: dict[str, str], client: Celery, posts: int = POSTS, warmup: int = WARMUP, again: bool = False
) -> Soak:
    """Warm up, take the start figures, soak with `posts` POSTs, drain, take the end figures; clean up.

    `again`: then, once the run's time-limit timers are due, a second run of as many POSTs,
    over which the worker's main process's RSS is measured too.
    """
    port = _free_port()
    with ExitStack() as cleanup:
        backend = cleanup.enter_context(redis.Redis.from_url(urls.result_backend))
        before = result_keys(backend)
        cleanup.callback(delete_new_results, backend, before)
        cleanup.callback(client.control.purge)  # any messages a failed run left in QUEUE
        base_url = cleanup.enter_context(load.served("app:create_app()", env, port))
        worker = cleanup.enter_context(workers.worker("app context", "prefork", env, QUEUE, client))
        wrk_soak(base_url, warmup)
        drain(urls.broker_url)
        delete_new_results(backend, before)  # the start is the db as it was, in settled processes
        processes = Processes.find(port, worker)
        start = figures(processes, backend, urls.broker_url)
        answered = wrk_soak(base_url, posts)
        drain(urls.broker_url)
        end = figures(processes, backend, urls.broker_url)
        processes.check_unchanged(port)
        delete_new_results(backend, before)
        kept = int(backend.info("memory")["used_memory"]) / MB
        second = _second_run(base_url, posts, urls.broker_url, processes, port) if again else None
    measures = [Measure(name, unit, value, end[name][0]) for name, (value, unit) in start.items()]
    after = Measure("Redis: used_memory, the run's results deleted", "MB", start[USED_MEMORY][0], kept)
    measures.insert(list(start).index(USED_MEMORY) + 1, after)
    if second is not None:
        name = f"worker: RSS of the main process over a second run, {LINGER_SECONDS} s after the first"
        measures.insert(list(start).index(MAIN_RSS) + 1, Measure(name, "MB", end[MAIN_RSS][0], second))
    return Soak(measures, answered)


def _free_port() -> int:
    """A port nothing listens on now: other benchmarks may run on this machine meanwhile."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def rows(bench: Bench) -> list[Row]:
    """The growth of each figure over one soak of POSTS POSTs, as rows of `python -m bench`'s table.

    One run, whatever `bench.repeat`: it takes minutes. The variant column gives start -> end.
    """
    run = soak(bench.urls, bench.env, bench.client)
    return [
        Row(
            f"soak, {run.answered.posts:,} POSTs: growth of {m.name}",
            f"{m.start:,.2f} -> {m.end:,.2f}",
            [m.growth],
            m.unit,
        )
        for m in run.measures
    ]


def table(run: Soak) -> str:
    """Markdown: each figure at the start and the end, and its growth (flagged past LIMIT_MB)."""
    lines = ["| measure | start | end | growth |", "|---|---|---|---|"]
    for m in run.measures:
        over = f" (over {LIMIT_MB} MB)" if m.unit == "MB" and m.growth >= LIMIT_MB else ""
        decimals = 2 if m.unit == "MB" else 0  # a client's tot-mem is tens of kB
        figure = f"{{:,.{decimals}f}}"
        start, end, growth = figure.format(m.start), figure.format(m.end), f"{m.growth:+,.{decimals}f}"
        lines.append(f"| {m.name} | {start} {m.unit} | {end} {m.unit} | {growth} {m.unit}{over} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=POSTS, help=f"POSTs answered in the run (default: {POSTS:,})")
    parser.add_argument("--warmup", type=int, default=WARMUP, help=f"POSTs before the start (default: {WARMUP:,})")
    parser.add_argument("--again", action="store_true", help=f"a second run {LINGER_SECONDS} s later (main process)")
    args = parser.parse_args()
    report.exit_on_signals()  # else no stopped children, keys left
    started = time.perf_counter()
    with bench_session(repeat=1) as bench:
        run = soak(bench.urls, bench.env, bench.client, args.posts, args.warmup, args.again)
    answered = run.answered
    print(report.header(bench.urls.source))
    print(
        f"{answered.posts:,} POSTs and {answered.gets:,} GETs answered in {answered.seconds:,.0f} s "
        f"({answered.posts / answered.seconds:,.0f} POSTs/s), {CLIENTS} connections; "
        f"{time.perf_counter() - started:,.0f} s in all\n"
    )
    print(table(run))


if __name__ == "__main__":
    main()
