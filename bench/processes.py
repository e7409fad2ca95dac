"""The processes a benchmark measures: found by the port they listen on, and their CPU time."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

import psutil  # type: ignore[import-untyped]  # a dev requirement without stubs


def port_of(url: str) -> int | None:
    """The port of a service's URL (of the first, where `url` lists several separated by ';')."""
    return urlsplit(url.split(";")[0]).port


def listening_process(port: int | None) -> psutil.Process | None:
    """The process on this machine listening on `port`; None if none does, or a container's proxy does.

    Processes forked after the listen share its socket (gunicorn's workers their master's)
    and the system's table names only one of them: its topmost holder is the one meant.
    """
    found = next(
        (
            psutil.Process(connection.pid)
            for connection in psutil.net_connections(kind="tcp")
            if connection.status == psutil.CONN_LISTEN and connection.laddr.port == port and connection.pid
        ),
        None,
    )
    if found is None or found.name() == "docker-proxy":
        return None
    while (parent := found.parent()) is not None and _listens(parent, port):
        found = parent
    return found


def _listens(process: psutil.Process, port: int | None) -> bool:
    try:
        connections = process.net_connections(kind="tcp")
    except psutil.AccessDenied:  # another user's process: not one this bench started
        return False
    return any(c.status == psutil.CONN_LISTEN and c.laddr.port == port for c in connections)


def cpu_seconds(process: psutil.Process) -> float:
    """User and system CPU of `process` and its children so far."""
    processes = [process, *process.children(recursive=True)]
    total = 0.0
    for each in processes:
        try:
            times = each.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


@contextmanager
def cpu_meter(processes: dict[str, psutil.Process | None]) -> Iterator[dict[str, float]]:
    """CPU seconds per second of the block, of each named process with its children: filled in when it ends."""
    known = {name: process for name, process in processes.items() if process is not None}
    before = {name: cpu_seconds(process) for name, process in known.items()}
    started = time.perf_counter()
    spent: dict[str, float] = {}
    yield spent
    elapsed = time.perf_counter() - started
    spent.update({name: (cpu_seconds(process) - before[name]) / elapsed for name, process in known.items()})
