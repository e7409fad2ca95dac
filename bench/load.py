"""HTTP load: wrk against gunicorn, and 1000 tasks end to end through the API."""

from __future__ import annotations

import http.client
import json
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench import ROOT

# A new connection per request, as browsers behind a proxy mostly are: with keep-alive,
# gunicorn's sync workers stall clients waiting on a busy worker's connection.
WRK_SCRIPT = 'wrk.method = "POST"\nwrk.headers["Connection"] = "close"\n'
WRK_GET_SCRIPT = 'wrk.headers["Connection"] = "close"\n'
# POST, each request with an Idempotency-Key of its own (unique per wrk thread and request).
WRK_IDEMPOTENT_SCRIPT = (
    WRK_SCRIPT
    + """
local prefix, count = tostring({}):sub(8), 0
request = function()
  count = count + 1
  wrk.headers["Idempotency-Key"] = prefix .. "-" .. count
  return wrk.format()
end
"""
)


# gunicorn's worker classes as compared: 2 sync workers (one request at a time each), or 2
# gthread workers with 8 threads each (requests share a process, each thread its own channel).
WORKER_CLASSES = {"sync": ["-w", "2"], "gthread": ["-w", "2", "-k", "gthread", "--threads", "8"]}


@contextmanager
def served(app: str, env: dict[str, str], port: int, worker_class: str = "sync", cwd: Path = ROOT) -> Iterator[str]:
    """gunicorn serving `app` on 127.0.0.1:`port` (WORKER_CLASSES) from the tree `cwd`; yields the base URL."""
    command = [sys.executable, "-m", "gunicorn", *WORKER_CLASSES[worker_class], "-b", f"127.0.0.1:{port}", app]
    server = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for_port(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=30)


def wrk_post(
    base_url: str, clients: int, seconds: int = 5, idempotent: bool = False, authorization: str | None = None
) -> dict[str, float]:
    """POST /task/ with wrk for `seconds` (each with a key of its own if `idempotent`): req/s, p50/p99 ms."""
    script = WRK_IDEMPOTENT_SCRIPT if idempotent else WRK_SCRIPT
    if authorization is not None:
        script += f'wrk.headers["Authorization"] = "{authorization}"\n'
    return wrk(f"{base_url}/task/", clients, script, seconds)


def wrk_get(url: str, clients: int, seconds: int = 5) -> dict[str, float]:
    """GET `url` (a task's status) with wrk for `seconds`, a new connection each: req/s, p50/p99 ms."""
    return wrk(url, clients, WRK_GET_SCRIPT, seconds)


def wrk(url: str, clients: int, lua: str, seconds: int) -> dict[str, float]:
    """wrk against `url` with the `lua` script: req/s, p50/p99 ms; any failed request is an error."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        script.write(lua)
        script.flush()
        threads = min(clients, 2)
        command = ["wrk", f"-t{threads}", f"-c{clients}", f"-d{seconds}s", "--latency", "-s", script.name, url]
        output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in output or "Socket errors" in output:
        raise RuntimeError(f"wrk saw failed requests:\n{output}")
    return {
        "rate": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),  # type: ignore[union-attr]
        "p50": _milliseconds(re.search(r"50%\s+([\d.]+\w+)", output).group(1)),  # type: ignore[union-attr]
        "p99": _milliseconds(re.search(r"99%\s+([\d.]+\w+)", output).group(1)),  # type: ignore[union-attr]
    }


UNFINISHED = ("PENDING", "STARTED", "PROGRESS")


def end_to_end(base_url: str, tasks: int = 1000, clients: int = 16) -> float:
    """Tasks per second: `tasks` POSTed by `clients` threads, polled until all SUCCESS."""
    host = base_url.removeprefix("http://")
    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        locations = list(pool.map(lambda _: _request(host, "POST", "/task/")[1], range(tasks)))
        pending = set(locations)
        while pending:
            bodies = pool.map(lambda path: _request(host, "GET", path)[0], pending)
            states = {path: _state(body) for path, body in zip(pending, bodies, strict=True)}
            failed = [path for path, state in states.items() if state not in (*UNFINISHED, "SUCCESS")]
            if failed:
                raise RuntimeError(f"tasks failed: {failed[:3]}")
            pending = {path for path, state in states.items() if state != "SUCCESS"}
    return tasks / (time.perf_counter() - started)


def post_location(base_url: str) -> str:
    """POST /task/ once: the path of the new task's status."""
    return _request(base_url.removeprefix("http://"), "POST", "/task/")[1]


def _state(body: dict[str, Any]) -> str:
    # Flask's example answers whether the task succeeded, not its state (bench/bare_web.py).
    return str(body["state"]) if "state" in body else ("SUCCESS" if body["successful"] else "PENDING")


def _request(host: str, method: str, path: str) -> tuple[dict[str, Any], str]:
    connection = http.client.HTTPConnection(host, timeout=30)
    try:
        connection.request(method, path)
        response = connection.getresponse()
        return json.loads(response.read()), response.getheader("Location") or path
    finally:
        connection.close()


def _milliseconds(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", value).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1, "s": 1000}[unit]


def _wait_for_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
