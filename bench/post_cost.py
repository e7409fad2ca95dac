"""What `POST /task/` costs now against the code before `expose()` (app/web/task_api.py) existed.

    python -m bench.post_cost [--repeat N]    # services as the other benchmarks

Issue 20 moved the sample task's view into a helper any task can use (schema validation
from the signature, the id record in the task class): it must cost a request no more
than the hand-written view it replaced. Both versions are served side by side, the old
one from `git archive` of BEFORE into a folder of its own, on the same services and
config, and loaded in turn (A B A B ...): one client, a new connection per request, no
worker (the queue is purged after each load). Per request: the wall time (one client,
so one request at a time) and the CPU gunicorn spent; then, the app alone, the CPU of a
process sending POSTs through Flask's test client (IN_PROCESS). Both send the
environment's AUTHORIZATION header, if it has one (bench/post_auth.py). The CPU figures are the
steadier where other work shares the machine: the wall time waits on RabbitMQ and Redis.
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from functools import partial
from pathlib import Path

import redis

from bench import ROOT, leftovers, load
from bench.processes import cpu_meter, listening_process, port_of
from bench.report import QUEUE, Bench, Row, bench_session, interleave, table

# The last commit without app/web/task_api.py: the parent of the one that added it.
BEFORE = "db0929f^"
NOW = "this tree"
OLD = f"before expose() ({BEFORE})"
SECONDS = 3
MEASURES = {
    "POST /task/ served, 1 client: wall time per request": "wall",
    "POST /task/ served, 1 client: gunicorn's CPU per request": "cpu",
    "POST /task/, the app alone (test client): CPU per request": "alone",
}
# The environment variable whose value, if set, the POSTs send as their Authorization header.
AUTHORIZATION = "BENCH_AUTHORIZATION"
# Run from a tree, FLASK_CONFIG set: µs of the process's CPU per POST /task/, after a warm-up.
IN_PROCESS = f"""
import os, time
from app import create_app
client = create_app().test_client()
if "{AUTHORIZATION}" in os.environ:
    client.environ_base["HTTP_AUTHORIZATION"] = os.environ["{AUTHORIZATION}"]
for _ in range(200):
    assert client.post("/task/").status_code == 202
started = time.process_time()
for _ in range(1000):
    client.post("/task/")
print(1000 * (time.process_time() - started))
"""


@contextmanager
def old_tree() -> Iterator[Path]:
    """The repository at BEFORE, its tracked files only, in a folder removed afterwards."""
    with tempfile.TemporaryDirectory() as folder:
        archive = subprocess.run(["git", "archive", BEFORE], cwd=ROOT, capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", folder], input=archive, check=True)
        yield Path(folder)


def free_port() -> int:
    """A port no one listens on now: this bench may run beside another's servers."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def per_request(url: str, tree: Path, env: dict[str, str], purge: Callable[[], object]) -> dict[str, float]:
    """µs per POST /task/: wrk's wall time and gunicorn's CPU (one client, SECONDS), then IN_PROCESS's CPU."""
    server = listening_process(port_of(url))
    assert server is not None, f"nothing listens at {url}"
    with cpu_meter({"gunicorn": server}) as cpu:
        rate = load.wrk_post(url, 1, SECONDS, authorization=env.get(AUTHORIZATION))["rate"]
    purge()  # no worker runs: keep the broker's backlog from growing
    command, tree_env = [sys.executable, "-c", IN_PROCESS], {**env, "PYTHONPATH": str(tree)}
    alone = subprocess.run(command, cwd=tree, env=tree_env, capture_output=True, text=True, check=True)
    purge()
    return {"wall": 1e6 / rate, "cpu": 1e6 * cpu["gunicorn"] / rate, "alone": float(alone.stdout)}


def rows(bench: Bench) -> list[Row]:
    """POST /task/, one client: wall and CPU µs per request, now and before expose(), interleaved."""
    with ExitStack() as stack, redis.Redis.from_url(bench.urls.result_backend) as backend:
        # Last: the run's id records, its queue and the exchanges its client made (the services may be shared).
        stack.callback(leftovers.delete_new_results, backend, leftovers.result_keys(backend))
        stack.callback(leftovers.remove_queue, bench.client, QUEUE, leftovers.existing_exchanges(bench.client))
        trees = {NOW: ROOT, OLD: stack.enter_context(old_tree())}
        urls = {
            variant: stack.enter_context(load.served("app:create_app()", bench.env, free_port(), cwd=tree))
            for variant, tree in trees.items()
        }
        measure = partial(per_request, env=bench.env, purge=bench.client.control.purge)
        each = {variant: partial(measure, urls[variant], tree) for variant, tree in trees.items()}
        runs = interleave(bench.repeat, each)
    found = []
    for variant, results in runs.items():
        for name, key in MEASURES.items():
            found.append(Row(name, variant, [result[key] for result in results], "µs", OLD))
    return found


def main() -> None:
    """`python -m bench.post_cost`: this section alone."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15, help="loads of each version, in turn (default: 15)")
    with bench_session(parser.parse_args().repeat) as bench:
        print(table(rows(bench)))


if __name__ == "__main__":
    main()
