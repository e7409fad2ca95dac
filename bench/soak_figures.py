# mypy: allow-untyped-calls
# kombu, which this module drives directly, is only partly annotated.
"""The soak's figures: memory and file descriptors of the processes, Redis's buffers and keys, the queue."""

from __future__ import annotations

import time
from dataclasses import dataclass
from itertools import islice

import psutil  # type: ignore[import-untyped]  # a dev requirement without stubs
import redis
from kombu.connection import Connection

from bench.processes import listening_process
from bench.report import QUEUE

MB = 1_000_000
DRAIN_SECONDS = 300
USED_MEMORY = "Redis: used_memory (whole server)"
MAIN_RSS = "worker: RSS of the main process"


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
        f"web: RSS of the {len(web)} gunicorn workers, sum": (rss(web), "MB"),
        MAIN_RSS: (rss(main), "MB"),
        f"worker: RSS of the {len(pool)} pool processes, sum": (rss(pool), "MB"),
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


def rss(processes: list[psutil.Process]) -> float:
    """The resident memory of `processes`, summed, in MB."""
    return float(sum(p.memory_info().rss for p in processes)) / MB


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
