"""Where the integration tier's broker and result backend come from.

In order: ``TEST_BROKER_URL`` + ``TEST_RESULT_BACKEND``; else RabbitMQ and Redis
containers from testcontainers; else none (the tier skips, or fails under CI).
"""

from __future__ import annotations

import functools
import os
import socket
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, closing, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import redis

if TYPE_CHECKING:
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.waiting_utils import WaitStrategy, WaitStrategyTarget

# Official images by default; override for a mirror or images built offline
# (.ci/build-offline-images).
RABBITMQ_IMAGE = os.environ.get("TEST_RABBITMQ_IMAGE", "rabbitmq:4")
REDIS_IMAGE = os.environ.get("TEST_REDIS_IMAGE", "redis:7")
# Containers start from several threads (side by side, and the fault tests' in the background).
_REAPER_LOCK = threading.Lock()


@dataclass(frozen=True)
class Services:
    """Where to reach the broker and the result backend, and how they were found."""

    broker_url: str
    result_backend: str
    source: str


def from_environment() -> Services | None:
    """The services named by TEST_BROKER_URL and TEST_RESULT_BACKEND, if both are set."""
    broker_url, result_backend = os.environ.get("TEST_BROKER_URL"), os.environ.get("TEST_RESULT_BACKEND")
    if broker_url and result_backend:
        return Services(broker_url, result_backend, "TEST_BROKER_URL / TEST_RESULT_BACKEND")
    return None


@functools.cache  # asked by the pytest header and several fixtures: probe once per process
def docker_unavailable_reason() -> str | None:
    """Why testcontainers cannot run here, or None when a Docker engine answers."""
    host = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    try:
        _connect_to_docker_engine(host)
        import docker

        with closing(docker.from_env(timeout=3)) as client:
            client.ping()
    except Exception as error:  # docker raises several unrelated types when no engine runs
        return f"no Docker engine at {host} ({type(error).__name__}: {error})"
    return None


def _connect_to_docker_engine(host: str) -> None:
    """Raise OSError unless the engine's socket accepts a connection.

    docker-py never closes the socket of a connection the engine refused
    (``UnixHTTPConnection.connect`` in docker/transport/unixconn.py): it would be
    collected later, as a ResourceWarning that ``filterwarnings = error`` pins on
    whichever test is running. This probe's socket is closed whatever happens.
    """
    url = urlsplit(host)
    if url.scheme == "unix":
        with socket.socket(socket.AF_UNIX) as probe:
            probe.settimeout(3)
            probe.connect(url.path)
    elif url.scheme == "tcp" and url.hostname:
        socket.create_connection((url.hostname, url.port or 2375), timeout=3).close()
    # Other schemes (ssh://, npipe://) are left to docker-py.


def describe() -> str:
    """One line for the pytest header: which source the integration tier will use."""
    if (services := from_environment()) is not None:
        return f"integration services: {services.source}"
    if (reason := docker_unavailable_reason()) is None:
        return f"integration services: testcontainers ({RABBITMQ_IMAGE}, {REDIS_IMAGE})"
    return f"integration services: none: no TEST_BROKER_URL / TEST_RESULT_BACKEND and {reason}"


def remove_run_data(found: Services, prefix: str, queues: Iterable[str]) -> None:
    """Delete what a run made on the services: its queues and exchanges, and its keys (all named `prefix...`)."""
    from kombu.connection import Connection

    exchanges = [*queues, f"{prefix}.pidbox", f"reply.{prefix}.pidbox", f"{prefix}.events"]
    with Connection(found.broker_url) as connection:
        channel = connection.default_channel
        for queue in queues:
            channel.queue_delete(queue)
        for exchange in exchanges:  # each queue's own exchange (Celery's default), remote control, events
            channel.exchange_delete(exchange)
    with redis.Redis.from_url(found.result_backend) as backend:
        for key in backend.scan_iter(match=f"{prefix}*"):
            backend.delete(key)


@dataclass(frozen=True)
class Containers:
    """Started containers, to stop, pause or restart, and the URLs that reach them."""

    services: Services
    rabbitmq: DockerContainer
    redis: DockerContainer


@contextmanager
def containers(fixed_ports: bool = False, redis_password: str | None = None) -> Iterator[Containers]:
    """One RabbitMQ and one Redis container, started side by side, removed on exit.

    Docker gives a restarted container new random host ports; ``fixed_ports`` picks free
    ones up front so that a restarted broker keeps its URL.
    """
    from testcontainers.community.rabbitmq import RabbitMqContainer
    from testcontainers.community.redis import RedisContainer
    from testcontainers.core.config import testcontainers_config
    from testcontainers.core.container import Reaper

    if "TC_POOLING_INTERVAL" not in os.environ and "TC_MAX_TRIES" not in os.environ:
        # Probe readiness every 0.2 s, not every second; the limit stays 120 s.
        testcontainers_config.sleep_time, testcontainers_config.max_tries = 0.2, 600
    if not testcontainers_config.ryuk_disabled:
        with _REAPER_LOCK:  # testcontainers starts its Ryuk container unguarded: once, before any thread
            Reaper.get_instance()

    rabbitmq, redis = RabbitMqContainer(RABBITMQ_IMAGE), RedisContainer(REDIS_IMAGE, password=redis_password)
    redis.waiting_for(_closing_ping())
    # A node name that needs no lookup of the container's host name: boots 0.7 s sooner.
    rabbitmq.with_env("RABBITMQ_NODENAME", "rabbit@localhost")
    if fixed_ports:
        rabbitmq.with_bind_ports(rabbitmq.port, free_port())
        redis.with_bind_ports(redis.port, free_port())
    with ExitStack() as stack:
        with ThreadPoolExecutor(2) as pool:
            started = [pool.submit(stack.enter_context, container) for container in (rabbitmq, redis)]
        for future in started:
            future.result()
        host = rabbitmq.get_container_host_ip()
        password = f":{redis_password}@" if redis_password else ""
        services = Services(
            broker_url=f"amqp://guest:guest@{host}:{rabbitmq.get_exposed_port(rabbitmq.port)}//",
            result_backend=f"redis://{password}{redis.get_container_host_ip()}:{redis.get_exposed_port(redis.port)}/0",
            source=f"testcontainers ({RABBITMQ_IMAGE}, {REDIS_IMAGE})",
        )
        yield Containers(services, rabbitmq, redis)


def _closing_ping() -> WaitStrategy:
    """testcontainers' readiness check of Redis, closing the client it pings with (its own leaves it to the gc).

    redis-py's clients sit in reference cycles: collected, a client's socket may be
    finalized before the client closes it, a ResourceWarning in whichever test runs then.
    """
    from testcontainers.community.redis import PingWaitStrategy, RedisContainer

    class ClosingPing(PingWaitStrategy):
        def wait_until_ready(self, container: WaitStrategyTarget) -> None:
            assert isinstance(container, RedisContainer)

            def ping() -> bool:
                with container.get_client() as client:
                    return bool(client.ping())

            if not self._poll(ping):
                raise redis.exceptions.ConnectionError("Could not connect to Redis")

    return ClosingPing()


def free_port() -> int:
    """A TCP port nothing listens on, on 127.0.0.1, right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port
