"""Memory under sustained load: 50,000 POSTs with GETs through gunicorn while a worker runs the tasks.

    python -m bench.soak [--posts 50000] [--warmup 2000] [--again]

Why: a leak that grows a little with every task (celery#4983: the web process subscribed
to each task's result channel, and the replies nobody read piled up in Redis's output
buffer for its connection) never shows in a benchmark of a few seconds, only after tens
of thousands of tasks. The target: each figure below grows by less than 10 MB.

How: gunicorn (2 sync workers) serves create_app(), a prefork worker (2 processes)
consumes queue "bench" (the bench config: the sample task sleeps 0), and wrk (16
connections, `Connection: close` as in bench/load.py) sends a POST /task/, then a GET of
the Location a POST answered, in turn, until the POSTs answered reach --posts. First a
warm-up of --warmup POSTs, so that imports, connection pools and allocators have settled;
then the worker drains the queue and the start figures are taken; then the run, the drain
(until the queue is empty, at most 5 minutes), and the end figures:

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
they reference, until they are due (task_time_limit, 330 s: celery#1427, celery#5200), so
its RSS grows with the task rate over the last 330 s; once they are due the memory is
free again, though the RSS stays. `--again` tells that from a leak: it waits them out
after the end figures, runs as many POSTs again, and measures the main process's RSS over
that second run.

A gunicorn worker or pool process replaced during the run (its memory would start over)
fails the run. What the run leaves is removed, on failure too: the result records that
were not there before it (the keys `celery-task-meta-*` of the results db) and the
messages of queue "bench"; the processes are stopped. Services as for `python -m bench`
(TEST_BROKER_URL / TEST_RESULT_BACKEND, else containers). MB is 10^6 bytes. On a shared
machine the figures are indicative: used_memory counts every db of the Redis server.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack, suppress
from dataclasses import dataclass
from itertools import islice

import psutil  # type: ignore[import-untyped]  # a dev requirement without stubs
import redis
from celery import Celery
from kombu.connection import Connection

from app.settings.celery_defaults import CELERY_DEFAULTS
from bench import load, workers
from bench.processes import listening_process
from bench.report import QUEUE, Bench, Row, bench_session
from tests.integration.services import Services

POSTS = 50_000
WARMUP = 2_000
CLIENTS = 16
THREADS = 2
MB = 1_000_000
LIMIT_MB = 10  # the target: growth under 10 MB a figure
DRAIN_SECONDS = 300
RESULT_KEYS = "celery-task-meta-*"
USED_MEMORY = "Redis: used_memory (whole server)"
MAIN_RSS = "worker: RSS of the main process"
# The worker's main process keeps a timer for each task's time limits until they are due.
LINGER_SECONDS = CELERY_DEFAULTS["task_time_limit"] + 15

# Each wrk thread keeps the Locations its POSTs were answered in a FIFO and GETs the oldest
# whenever it has one, else POSTs: POSTs and GETs alternate, each task is read once. Each
# thread prints its count of POSTs answered every PROGRESS_EVERY; the caller interrupts
# wrk once they add up to the target. (A thread that stopped itself early would leave
# connections open that gunicorn's sync workers wait on, stalling the other threads.)
PROGRESS_EVERY = 50
PROGRESS = re.compile(r"soak: thread (\d+), (\d+) posts")
WRK_SCRIPT = """
wrk.headers["Connection"] = "close"
local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("id", #threads)
end

function init(args)
  every = tonumber(args[1])
  posts, gets, failed = 0, 0, 0
  locations, first, last = {}, 1, 0
end

function request()
  if first <= last then
    local location = locations[first]
    locations[first] = nil
    first = first + 1
    return wrk.format("GET", location)
  end
  return wrk.format("POST", "/task/")
end

function response(status, headers, body)
  local location = headers["Location"] or headers["location"]
  if status == 202 and location then
    posts = posts + 1
    last = last + 1
    locations[last] = (location:gsub("^https?://[^/]+", ""))
  elseif status == 200 then
    gets = gets + 1
  else
    failed = failed + 1
  end
  if status == 202 and posts % every == 0 then
    io.write(string.format("soak: thread %d, %d posts\\n", id, posts))
    io.stdout:flush()
  end
end

function done(summary, latency, requests)
  local posts, gets, failed = 0, 0, 0
  for _, thread in ipairs(threads) do
    posts = posts + thread:get("posts")
    gets = gets + thread:get("gets")
    failed = failed + thread:get("failed")
  end
  io.write(string.format("soak: %d posts, %d gets, %d failed\\n", posts, gets, failed))
end
"""


@dataclass(frozen=True)
class Answered:
    """What one wrk run had answered: POSTs (202 with a Location) and GETs (200)."""

    posts: int
    gets: int
    seconds: float


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


@dataclass(frozen=True)
class Processes:
    """The processes measured: gunicorn's workers and the Celery worker's processes, as found at the start."""

    web: list[psutil.Process]
    worker: list[psutil.Process]

    @classmethod
    def find(cls, port: int, worker: psutil.Process) -> Processes:
        """The workers of the gunicorn master listening on `port` (its title names no port), and `worker`'s."""
        master = listening_process(port)
        if master is None:
            raise RuntimeError(f"no gunicorn listens on port {port}")
        return cls(web=master.children(), worker=[worker, *worker.children()])

    def check_unchanged(self, port: int) -> None:
        """Fail if a process was replaced: a new one's memory starts over and would hide a leak."""
        now = Processes.find(port, self.worker[0])
        for was, found in ((self.web, now.web), (self.worker, now.worker)):
            if {p.pid for p in was} != {p.pid for p in found}:
                raise RuntimeError(f"processes replaced during the run: {was} -> {found}")


def wrk_soak(base_url: str, posts: int, clients: int = CLIENTS, threads: int = THREADS) -> Answered:
    """POST and GET with wrk until at least `posts` POSTs were answered; fail on any non-2xx or socket error."""
    cap = posts // 25 + 60  # seconds: even 25 POSTs a second would finish
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        script.write(WRK_SCRIPT)
        script.flush()
        command = [
            "wrk",
            f"-t{threads}",
            f"-c{clients}",
            f"-d{cap}s",
            "-s",
            script.name,
            base_url,
            "--",
            str(PROGRESS_EVERY),
        ]
        started = time.perf_counter()
        output = _run_until_answered(command, posts)
        seconds = time.perf_counter() - started
    totals = re.search(r"soak: (\d+) posts, (\d+) gets, (\d+) failed", output)
    if totals is None or "Non-2xx" in output or "Socket errors" in output or int(totals.group(3)):
        raise RuntimeError(f"wrk saw failed requests:\n{output}")
    answered = Answered(int(totals.group(1)), int(totals.group(2)), seconds)
    if answered.posts < posts:
        raise RuntimeError(f"only {answered.posts:,} of {posts:,} POSTs answered in {cap} s:\n{output}")
    return answered


def _run_until_answered(command: list[str], posts: int) -> str:
    """wrk's output, all but its progress lines; interrupted (SIGINT: it prints its summary) once `posts` were answered.

    SIGINT is sent again each second until wrk exits: when a running wrk thread takes the
    signal, it stops the threads, but wrk's main thread sleeps on to the end of -d.
    """
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert process.stdout is not None
    try:
        lines: list[str] = []
        answered: dict[str, int] = {}  # POSTs answered, by wrk thread
        while sum(answered.values()) < posts and (line := process.stdout.readline()):
            if progress := PROGRESS.match(line):
                answered[progress.group(1)] = int(progress.group(2))
            else:
                lines.append(line)
        while process.poll() is None:  # the rest of its output is a few lines: the pipe holds them
            process.send_signal(signal.SIGINT)
            with suppress(subprocess.TimeoutExpired):
                process.wait(timeout=1)
        lines += [line for line in process.stdout if not PROGRESS.match(line)]  # threads stop within 0.1 s
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        process.stdout.close()
    if process.returncode:
        raise RuntimeError(f"wrk exited with {process.returncode}:\n{''.join(lines)}")
    return "".join(lines)


def queue_depth(broker_url: str) -> int:
    """Messages ready in QUEUE: a passive declare answers the count without creating anything."""
    with Connection(broker_url) as connection:
        return int(connection.default_channel.queue_declare(queue=QUEUE, passive=True).message_count)


def drain(broker_url: str, timeout: float = DRAIN_SECONDS) -> None:
    """Wait until the worker has taken every message, or `timeout`: the end figures show what is left."""
    deadline = time.monotonic() + timeout
    while queue_depth(broker_url) and time.monotonic() < deadline:
        time.sleep(0.5)
    time.sleep(1)  # the (at most 2) tasks taken last finish, unacknowledged until then


def figures(processes: Processes, backend: redis.Redis, broker_url: str) -> dict[str, tuple[float, str]]:
    """Every figure now, by name: (value, unit)."""
    web, main, pool = processes.web, processes.worker[:1], processes.worker[1:]
    clients = backend.client_list()
    ours = _clients_of(web + main + pool, clients)
    return {
        f"web: RSS of the {len(web)} gunicorn workers, sum": (_rss(web), "MB"),
        MAIN_RSS: (_rss(main), "MB"),
        f"worker: RSS of the {len(pool)} pool processes, sum": (_rss(pool), "MB"),
        "web: open file descriptors, sum": (sum(p.num_fds() for p in web), "fds"),
        "worker: open file descriptors, all processes": (sum(p.num_fds() for p in main + pool), "fds"),
        USED_MEMORY: (int(backend.info("memory")["used_memory"]) / MB, "MB"),
        "Redis: output buffers (omem) of web's and worker's clients, sum": (_omem(ours), "MB"),
        "Redis: largest tot-mem of those clients": (max((int(c["tot-mem"]) for c in ours), default=0) / MB, "MB"),
        "Redis: those clients": (len(ours), "clients"),
        "Redis: output buffers (omem) of all clients (whole server)": (_omem(clients), "MB"),
        "Redis: keys in the results db": (int(backend.dbsize()), "keys"),
        "Redis: the results db's records, MEMORY USAGE (sampled)": (_records_memory(backend) / MB, "MB"),
        f'RabbitMQ: messages ready in queue "{QUEUE}"': (queue_depth(broker_url), "messages"),
    }


def _rss(processes: list[psutil.Process]) -> float:
    return float(sum(p.memory_info().rss for p in processes)) / MB


def _second_run(base_url: str, posts: int, broker_url: str, processes: Processes, port: int) -> float:
    """The worker's main process's RSS after `posts` more, run once the first run's time-limit timers are due.

    Its RSS does not fall when they are due; if the second run grows it again, it leaks.
    """
    time.sleep(LINGER_SECONDS)
    wrk_soak(base_url, posts)
    drain(broker_url)
    processes.check_unchanged(port)
    return _rss(processes.worker[:1])


def _clients_of(processes: list[psutil.Process], clients: list[dict[str, str]]) -> list[dict[str, str]]:
    """The CLIENT LIST entries of `processes`' connections: other users of the server have their own buffers."""
    addresses = {f"{c.laddr.ip}:{c.laddr.port}" for p in processes for c in p.net_connections("tcp") if c.raddr}
    return [client for client in clients if client["addr"] in addresses]


def _omem(clients: list[dict[str, str]]) -> float:
    return sum(int(client["omem"]) for client in clients) / MB


def _records_memory(backend: redis.Redis, sample: int = 200) -> float:
    """Bytes the results db's records take, estimated from `sample` of them: used_memory counts every db."""
    keys = list(islice(backend.scan_iter(count=sample), sample))
    if not keys:
        return 0.0
    sizes = [backend.memory_usage(key, samples=0) or 0 for key in keys]
    return sum(sizes) / len(sizes) * int(backend.dbsize())


def result_keys(backend: redis.Redis) -> set[bytes]:
    """The result records in the results db now."""
    return set(backend.scan_iter(match=RESULT_KEYS, count=1000))


def delete_new_results(backend: redis.Redis, before: set[bytes]) -> None:
    """Delete the result records that were not there `before`: the run's (they would stay a day)."""
    new = list(result_keys(backend) - before)
    for chunk in range(0, len(new), 1000):
        backend.delete(*new[chunk : chunk + 1000])


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
    # SIGTERM would end this process without its clean-up: no stopped children, keys left.
    signal.signal(signal.SIGTERM, lambda number, frame: sys.exit(128 + number))
    started = time.perf_counter()
    with bench_session(repeat=1) as bench:
        run = soak(bench.urls, bench.env, bench.client, args.posts, args.warmup, args.again)
    answered = run.answered
    print(f"{platform.node()}: {os.cpu_count()} cores, Python {platform.python_version()}, {bench.urls.source}")
    print(
        f"{answered.posts:,} POSTs and {answered.gets:,} GETs answered in {answered.seconds:,.0f} s "
        f"({answered.posts / answered.seconds:,.0f} POSTs/s), {CLIENTS} connections; "
        f"{time.perf_counter() - started:,.0f} s in all\n"
    )
    print(table(run))


if __name__ == "__main__":
    main()
