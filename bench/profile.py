"""Where the time goes: py-spy samples of the serving processes under load, and CPU per request.

    python -m bench.profile    # services as the other benchmarks (TEST_* URLs, else containers)

A request's wall time in a gunicorn worker is split by what its sampled stack is doing
(the first matching rule of WEB_RULES, waits included: py-spy --idle), and the CPU that
every process on the path spent (gunicorn, RabbitMQ, Redis) is divided by the requests
answered. The same for a prefork worker draining no-op tasks (WORKER_RULES). CPU is
counted only for services running on this machine (TEST_* URLs): a container's shows as
its proxy's, which is left out.
"""

from __future__ import annotations

import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from functools import partial
from pathlib import Path

from bench import load, workers
from bench.processes import cpu_meter, listening_process, port_of
from bench.report import QUEUE, Bench, Row, bench_session, table

SAMPLES_PER_SECOND = 250
SAMPLED_SECONDS = 3  # of each load, after its first second
LOAD_SECONDS = 5
FLASK_APP = "bench.bare_web:create_app(confirms=False)"
Rules = list[tuple[str, tuple[str, ...]]]
# (bucket, frames that put a sample in it): the first rule with a frame in the stack wins.
WEB_RULES = [
    ("RabbitMQ's publisher confirm (waiting)", ("Channel.basic_publish_confirm",)),
    ("connecting to RabbitMQ", ("Connection._establish_connection",)),
    ("publish: message, serialization, send", ("Celery.send_task",)),
    ("id record: one Redis write", ("Backend.store_result",)),
    ("GET: one Redis read", ("_submitted_meta",)),
    ("logging", ("Logger.handle", "Logger._log")),
    ("metrics", ("app/observability/metrics.py",)),
    ("JSON", ("DefaultJSONProvider.response", "DefaultJSONProvider.dumps")),
    ("Flask, Werkzeug and the view's checks", ("Flask.__call__",)),
    ("gunicorn: lingering close (waits for the client's FIN)", ("close_graceful",)),
    ("gunicorn: HTTP parsing and writing", ("SyncWorker.handle", "ThreadWorker.handle")),
    ("gunicorn: waiting for a connection", ("",)),
]
WORKER_RULES = [
    ("the task's body", ("bench/tasks.py",)),
    ("app context push and pop", ("FlaskTask.__call__",)),
    ("result write", ("Backend.store_result", "mark_as_started")),
    ("Celery's tracer (run, signals, bookkeeping)", ("build_tracer.<locals>.trace_task",)),
    ("acknowledging (late acks)", ("Message.ack", "basic_ack")),
    ("receiving and dispatching to the pool", ("on_task_received", "Request.execute_using_pool")),
    ("prefork pool: pipes between processes", ("billiard/",)),
    ("the event loop (kombu's hub)", ("",)),
]


def sampled(root_pid: int, seconds: float, rules: Rules, idle: bool) -> dict[str, float]:
    """py-spy on `root_pid` and its children for `seconds`: seconds per bucket, summed over processes.

    With `idle`, wall time (waits included), else only time on a CPU.
    """
    with tempfile.TemporaryDirectory() as folder:
        output = Path(folder) / "stacks.txt"
        command = ["py-spy", "record", "--nonblocking", "--subprocesses", "--format", "raw"]
        command += ["--idle"] if idle else []
        command += ["-r", str(SAMPLES_PER_SECOND), "-d", str(seconds), "-o", str(output), "--pid", str(root_pid)]
        subprocess.run(command, check=True, capture_output=True)
        stacks = output.read_text().splitlines()
    buckets: Counter[str] = Counter({bucket: 0 for bucket, _ in rules})
    for line in stacks:
        stack, count = line.rsplit(" ", 1)
        if "init_process" not in stack and "WorkController" not in stack and "Worker.workloop" not in stack:
            continue  # gunicorn's or Celery's supervising process, not a worker
        bucket = next(name for name, frames in rules if any(frame in stack for frame in frames))
        buckets[bucket] += int(count)
    return {bucket: samples / SAMPLES_PER_SECOND for bucket, samples in buckets.items()}


def under_load(
    load: Callable[[], float], root_pid: int, rules: Rules, idle: bool = True
) -> tuple[dict[str, float], float]:
    """Run `load` (it returns units done per second) while py-spy samples `root_pid`: buckets, and the rate."""
    result: dict[str, float] = {}
    loader = threading.Thread(target=lambda: result.update(rate=load()))
    loader.start()
    time.sleep(1)  # the load has reached its steady state
    seconds = sampled(root_pid, SAMPLED_SECONDS, rules, idle)
    loader.join()
    return seconds, result["rate"]


def rows(bench: Bench) -> list[Row]:
    """POST and GET at 16 clients (ours; POST of Flask's example), a prefork worker's no-ops: time and CPU."""
    services = {
        "RabbitMQ": listening_process(port_of(bench.urls.broker_url)),
        "Redis": listening_process(port_of(bench.urls.result_backend)),
    }
    found = []
    with load.served("app:create_app()", bench.env, 8201) as ours, load.served(FLASK_APP, bench.env, 8202) as flask:
        status = ours + load.post_location(ours)
        loads = {
            "POST, 16 clients, ours": (ours, partial(load.wrk_post, ours, 16, LOAD_SECONDS)),
            "GET, 16 clients, ours": (ours, partial(load.wrk_get, status, 16, LOAD_SECONDS)),
            "POST, 16 clients, Flask's example": (flask, partial(load.wrk_post, flask, 16, LOAD_SECONDS)),
        }
        for measure, (url, wrk) in loads.items():
            server = listening_process(port_of(url))
            assert server is not None, f"nothing listens at {url}"
            with cpu_meter({"gunicorn": server, **services}) as cpu:
                seconds, rate = under_load(lambda wrk=wrk: wrk()["rate"], server.pid, WEB_RULES)  # type: ignore[misc]
            bench.client.control.purge()
            found += _rows(measure, "request", seconds, rate, cpu)
    with workers.worker("app context", "prefork", bench.env, QUEUE, bench.client) as worker:
        with cpu_meter({"Celery worker": worker, **services}) as cpu:
            drain = partial(workers.drain, bench.client, QUEUE, 8000)
            seconds, rate = under_load(drain, worker.pid, WORKER_RULES, idle=False)
        found += _rows("worker, prefork x2, no-op tasks", "task", seconds, rate, cpu, what="CPU (sampled)")
    return found


def _rows(
    measure: str, unit: str, seconds: dict[str, float], rate: float, cpu: dict[str, float], what: str = "wall time"
) -> list[Row]:
    """Per unit: ms of the serving processes' `what`, bucket by bucket; then µs of CPU, process by process."""
    done = rate * SAMPLED_SECONDS
    found = [Row(f"{measure}: {what} per {unit}", bucket, [1000 * s / done], "ms") for bucket, s in seconds.items()]
    found += [Row(f"{measure}: CPU µs per {unit}", name, [1e6 * c / rate], "µs") for name, c in cpu.items()]
    return found


def main() -> None:
    """`python -m bench.profile`: this section alone."""
    with bench_session(repeat=1) as bench:
        print(table(rows(bench)))


if __name__ == "__main__":
    main()
