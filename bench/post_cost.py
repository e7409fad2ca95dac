"""What `POST /task/` costs now against the code before `expose()` (app/web/task_api.py) existed.

    python -m bench.post_cost [--repeat N]    # services as the other benchmarks

Issue 20 moved the sample task's view into a helper any task can use (schema validation
from the signature, the id record in the task class): it must cost a request no more
than the hand-written view it replaced. Both versions are served side by side, the old
one from `git archive` of BEFORE into a folder of its own, on the same services and
config, and loaded in turn (A B A B ...): one client, a new connection per request, no
worker (the queue is purged after each load). Per request: the wall time (one client,
so one request at a time) and the CPU gunicorn spent, the steadier of the two where
other work shares the machine (the wall time waits on RabbitMQ and Redis too).
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from functools import partial
from pathlib import Path

from bench import ROOT, load
from bench.processes import cpu_meter, listening_process, port_of
from bench.report import Bench, Row, bench_session, interleave, table

# The last commit without app/web/task_api.py: the parent of the one that added it.
BEFORE = "db0929f^"
NOW = "this tree"
OLD = f"before expose() ({BEFORE})"
SECONDS = 3


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


def per_request(url: str, purge: Callable[[], object]) -> dict[str, float]:
    """POST /task/ with wrk, one client, for SECONDS: µs of wall time and of gunicorn's CPU per request."""
    server = listening_process(port_of(url))
    assert server is not None, f"nothing listens at {url}"
    with cpu_meter({"gunicorn": server}) as cpu:
        rate = load.wrk_post(url, 1, SECONDS)["rate"]
    purge()  # no worker runs: keep the broker's backlog from growing
    return {"wall": 1e6 / rate, "cpu": 1e6 * cpu["gunicorn"] / rate}


def rows(bench: Bench) -> list[Row]:
    """POST /task/, one client: wall and CPU µs per request, now and before expose(), interleaved."""
    with ExitStack() as stack:
        trees = {NOW: ROOT, OLD: stack.enter_context(old_tree())}
        urls = {
            variant: stack.enter_context(load.served("app:create_app()", bench.env, free_port(), cwd=tree))
            for variant, tree in trees.items()
        }
        purge = bench.client.control.purge
        runs = interleave(bench.repeat, {variant: partial(per_request, url, purge) for variant, url in urls.items()})
    found = []
    for variant, results in runs.items():
        for measure, key in (("wall time", "wall"), ("gunicorn's CPU", "cpu")):
            values = [result[key] for result in results]
            found.append(Row(f"POST /task/, 1 client: {measure} per request", variant, values, "µs", OLD))
    return found


def main() -> None:
    """`python -m bench.post_cost`: this section alone."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15, help="loads of each version, in turn (default: 15)")
    with bench_session(parser.parse_args().repeat) as bench:
        print(table(rows(bench)))


if __name__ == "__main__":
    main()
