"""What authentication and the limits cost a `POST /task/`: this tree served without them and with them.

    python -m bench.post_auth [--repeat N]    # services as the other benchmarks

Issue 22's bar: a POST with a client's token and the limits on costs at most 10 % more
than without. The same tree is served twice on the same services, from two configs: the
bench's own (`auth: false`, limits in memory far above any load here) and the same with a
client's token and the limits counted in the result backend's Redis, as production runs
them (rate and cap far above the load: every POST is a 202, the path a client under its
limits takes). Loaded in turn (A B A B ...) and measured as bench.post_cost measures:
gunicorn's CPU and the wall time per request under wrk (one client), and the CPU of the
app alone (Flask's test client). Each ratio is also taken pair by pair, so drift in the
machine's other load between two loads of one round weighs less. Last, the Redis round
trips a POST makes in each config, counted in the app alone.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from contextlib import ExitStack
from functools import partial
from pathlib import Path

import redis
import yaml

from app.web.auth import new_token
from bench import ROOT, leftovers, load
from bench.post_cost import AUTHORIZATION, MEASURES, free_port, per_request
from bench.report import QUEUE, Bench, Row, bench_session, header, interleave, table

PLAIN = "no token, limits in memory"
SECURED = "token, limits in Redis"
CLIENT = "post-auth-bench"
# Far above what one client sends here: the cost of counting, never a 429.
LIMITS = {"start_rate": "1000000/second", "unfinished_tasks": 1_000_000}
# Run from the tree, FLASK_CONFIG set: Redis round trips per POST /task/ (each one send of a command or pipeline).
ROUND_TRIPS = f"""
import os
from redis.connection import AbstractConnection
from app import create_app
client = create_app().test_client()
if "{AUTHORIZATION}" in os.environ:
    client.environ_base["HTTP_AUTHORIZATION"] = os.environ["{AUTHORIZATION}"]
assert client.post("/task/").status_code == 202
sent, send = [], AbstractConnection.send_packed_command
AbstractConnection.send_packed_command = lambda self, *args, **kwargs: sent.append(1) or send(self, *args, **kwargs)
for _ in range(100):
    assert client.post("/task/").status_code == 202
print(len(sent) / 100)
"""


def secured_env(bench: Bench) -> dict[str, str]:
    """The bench's environment, its config with CLIENT's token and the limits' default storage; the token to send."""
    token, line = new_token(CLIENT)
    config = yaml.safe_load(Path(bench.env["FLASK_CONFIG"]).read_text())
    config.update(auth={"tokens": yaml.safe_load(line)}, limits=LIMITS)  # storage_url: the result backend's Redis
    path = bench.folder / "secured.yaml"
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return {**bench.env, "FLASK_CONFIG": str(path), AUTHORIZATION: f"Bearer {token}"}


def round_trips(env: dict[str, str]) -> float:
    """Redis round trips per POST /task/ of the app alone (ROUND_TRIPS) with this environment's config."""
    command, tree_env = [sys.executable, "-c", ROUND_TRIPS], {**env, "PYTHONPATH": str(ROOT)}
    return float(subprocess.run(command, cwd=ROOT, env=tree_env, capture_output=True, text=True, check=True).stdout)


def forget_limits(backend: redis.Redis) -> None:
    """Delete what the limits kept of CLIENT: its started tasks, its rate's windows."""
    leftovers.delete(backend, [f"started-tasks:{CLIENT}".encode(), *backend.scan_iter(match=f"*LIMITER/{CLIENT}/*")])


def rows(bench: Bench) -> list[Row]:
    """POST /task/, one client: wall and CPU µs per request without and with a token and the limits, interleaved."""
    envs = {PLAIN: bench.env, SECURED: secured_env(bench)}
    with ExitStack() as stack, redis.Redis.from_url(bench.urls.result_backend) as backend:
        # Last: the run's id records, its queue and the exchanges its client made (the services may be shared).
        stack.callback(leftovers.delete_new_results, backend, leftovers.result_keys(backend))
        stack.callback(leftovers.remove_queue, bench.client, QUEUE, leftovers.existing_exchanges(bench.client))
        stack.callback(forget_limits, backend)
        urls = {
            variant: stack.enter_context(load.served("app:create_app()", env, free_port()))
            for variant, env in envs.items()
        }
        each = {
            variant: partial(per_request, urls[variant], ROOT, env, bench.client.control.purge)
            for variant, env in envs.items()
        }
        runs = interleave(bench.repeat, each)
        trips = {variant: round_trips(env) for variant, env in envs.items()}
        bench.client.control.purge()
    found = []
    for name, key in MEASURES.items():
        plain, secured = ([result[key] for result in runs[variant]] for variant in (PLAIN, SECURED))
        found.append(Row(name, PLAIN, plain, "µs"))
        found.append(Row(name, SECURED, secured, "µs", PLAIN))
        pairs = [with_them / without for without, with_them in zip(plain, secured, strict=True)]
        found.append(Row(f"{name}: ratio, pair by pair", SECURED, pairs, "x"))
    found += [Row("Redis round trips per POST (app alone)", variant, [trips[variant]], "") for variant in envs]
    return found


def main() -> None:
    """`python -m bench.post_auth`: this section alone."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15, help="loads of each config, in turn (default: 15)")
    with bench_session(parser.parse_args().repeat) as bench:
        print(f"{header(bench.urls.source)}; load average {_load_average()} at the start")
        print(table(rows(bench)))
        print(f"load average {_load_average()} at the end")


def _load_average() -> str:
    return " / ".join(f"{minutes:.1f}" for minutes in os.getloadavg())


if __name__ == "__main__":
    main()
