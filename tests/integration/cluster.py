"""A RabbitMQ cluster in containers, on a Docker network of its own, for the ha tests."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tests.integration.services import RABBITMQ_IMAGE, free_port

if TYPE_CHECKING:
    from testcontainers.core.container import DockerContainer


@dataclass(frozen=True)
class Node:
    """One node: its Erlang name, the port published on 127.0.0.1 (kept across restarts), its container."""

    name: str
    port: int
    container: DockerContainer
    cookie: str

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}//"

    def ctl(self, *arguments: str) -> tuple[int, str]:
        """rabbitmqctl inside the node's container: its exit status and output."""
        result = self.container.exec(["rabbitmqctl", "--erlang-cookie", self.cookie, "-q", *arguments])
        return result.exit_code, result.output.decode(errors="replace")

    def stop(self) -> None:
        """Stop the node as `docker stop` does: the broker shuts down and closes its connections."""
        self.container.get_wrapped_container().stop(timeout=30)

    def start(self, timeout: float = 120) -> None:
        """Start the stopped node and wait until it runs (and, in a cluster, has rejoined)."""
        self.container.get_wrapped_container().start()
        self.wait_until_running(timeout)

    def wait_until_running(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        # await_startup fails at once while the node's Erlang VM is not up yet.
        while (status := self.ctl("await_startup"))[0] != 0:
            assert time.monotonic() < deadline, f"{self.name} did not start: {status[1]}"
            time.sleep(0.5)


@contextmanager
def rabbitmq_cluster(size: int = 3) -> Iterator[list[Node]]:
    """`size` RabbitMQ nodes clustered with the first; removed, with their network, on exit."""
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.network import Network

    cookie = secrets.token_hex(16)
    with ExitStack() as stack:
        network = stack.enter_context(Network())
        nodes = []
        for number in range(1, size + 1):
            host = f"rabbit{number}"
            container = (
                DockerContainer(RABBITMQ_IMAGE)
                .with_network(network)
                .with_network_aliases(host)
                .with_kwargs(hostname=host)
                .with_env("RABBITMQ_NODENAME", f"rabbit@{host}")
                # The official image and Debian's package both read it; nodes share it to cluster.
                .with_env("RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS", f"-setcookie {cookie}")
                .with_bind_ports(5672, free_port())
            )
            nodes.append(Node(f"rabbit@{host}", 0, container, cookie))
        with ThreadPoolExecutor(size) as pool:
            started = [pool.submit(stack.enter_context, node.container) for node in nodes]
        for future in started:
            future.result()
        nodes = [Node(node.name, int(node.container.get_exposed_port(5672)), node.container, cookie) for node in nodes]
        with ThreadPoolExecutor(size) as pool:
            list(pool.map(Node.wait_until_running, nodes))
        for node in nodes[1:]:
            for command in (("stop_app",), ("join_cluster", nodes[0].name), ("start_app",)):
                status, output = node.ctl(*command)
                assert status == 0, f"{node.name}: rabbitmqctl {' '.join(command)}: {output}"
        yield nodes
