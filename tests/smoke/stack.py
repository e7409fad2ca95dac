"""The smoke tier's containers, on pytest-celery's classes: for each broker x backend combination
a broker, a result backend, and workers of this project's production image.

Images: the official ones, or those named by TEST_RABBITMQ_IMAGE, TEST_REDIS_IMAGE,
TEST_POSTGRES_IMAGE, and the Dockerfile's base TEST_PYTHON_IMAGE (.ci/build-offline-images
builds all four from Debian packages where no registry answers).
"""

from __future__ import annotations

import contextlib
import io
import os
import tarfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
import redis
import yaml
from flask import Flask
from kombu import Connection
from pytest_celery import (
    CeleryBackendCluster,
    CeleryBrokerCluster,
    CeleryTestBackend,
    CeleryTestBroker,
    CeleryTestContainer,
    CeleryTestWorker,
    CeleryWorkerContainer,
    RabbitMQContainer,
    RabbitMQTestBroker,
    RedisContainer,
    RedisTestBackend,
    RedisTestBroker,
)

from app import create_app
from tests import ROOT

if TYPE_CHECKING:
    import docker
    from docker.models.containers import Container

PYTHON_IMAGE = os.environ.get("TEST_PYTHON_IMAGE", "python:3.11-slim")
APP_IMAGE = "flask-celery-factory:smoke"
# Where the Dockerfile's FLASK_CONFIG points; the workers mount their config file there.
SECRETS_DIR = "/run/secrets"
SERVICE_UID = 10001  # the image's unprivileged user, who must be able to read the file


@dataclass(frozen=True)
class Combination:
    """A supported broker and result backend, and its ready config file (config/<name>.yaml)."""

    broker: str
    backend: str

    @property
    def name(self) -> str:
        return f"{self.broker}-{self.backend}"

    @property
    def config_file(self) -> Path:
        return ROOT / "config" / f"{self.name}.yaml"


COMBINATIONS = (Combination("rabbitmq", "redis"), Combination("redis", "redis"), Combination("rabbitmq", "postgresql"))


class _Published:
    """Reached by the test process at 127.0.0.1 and the port Docker published for SERVICE_PORT.

    pytest-celery's own `port` waits for the port in a busy loop of `docker exec`s, and its
    `host_url` says `localhost`; these read Docker's answer once the service accepts clients.
    """

    SERVICE_PORT: str
    attrs: dict[str, Any]

    @property
    def port(self) -> int:
        return int(self.attrs["NetworkSettings"]["Ports"][self.SERVICE_PORT][0]["HostPort"])


class RabbitMQ(_Published, RabbitMQContainer):  # type: ignore[misc]
    """pytest-celery's RabbitMQ container."""

    SERVICE_PORT = "5672/tcp"

    @classmethod
    def image(cls) -> str:
        return os.environ.get("TEST_RABBITMQ_IMAGE", "rabbitmq:4")

    @classmethod
    def initial_env(cls) -> dict[str, str]:
        # A node name that needs no lookup of the container's host name: boots 0.7 s sooner.
        return {"RABBITMQ_NODENAME": "rabbit@localhost"}

    @property
    def host_url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}//"

    def accepts_clients(self) -> bool:
        with Connection(self.host_url, connect_timeout=1) as connection:
            connection.ensure_connection(max_retries=0)
        return True


class Redis(_Published, RedisContainer):  # type: ignore[misc]
    """pytest-celery's Redis container (its command: no persistence, no protected mode)."""

    SERVICE_PORT = "6379/tcp"

    @classmethod
    def image(cls) -> str:
        return os.environ.get("TEST_REDIS_IMAGE", "redis:7")

    @property
    def host_url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def accepts_clients(self) -> bool:
        with redis.Redis.from_url(self.host_url, socket_timeout=1) as client:
            return bool(client.ping())


class PostgreSQL(_Published, CeleryTestContainer):  # type: ignore[misc]
    """A PostgreSQL server for Celery's SQLAlchemy result backend (pytest-celery has no such vendor).

    User, password and database "test": the official image makes them from its environment,
    local/postgres:bookworm has them built in.
    """

    SERVICE_PORT = "5432/tcp"
    URL = "db+postgresql+psycopg://test:test@{address}/test"

    @classmethod
    def image(cls) -> str:
        return os.environ.get("TEST_POSTGRES_IMAGE", "postgres:16")

    @classmethod
    def initial_env(cls) -> dict[str, str]:
        return {"POSTGRES_USER": "test", "POSTGRES_PASSWORD": "test", "POSTGRES_DB": "test"}

    @classmethod
    def command(cls, *args: str, **kwargs: Any) -> list[str] | None:
        return None  # the image's own

    @property
    def celeryconfig(self) -> dict[str, Any]:
        return {"url": self.URL.format(address=f"{self.hostname}:5432"), "host_url": self.host_url}

    @property
    def hostname(self) -> str:
        return str(self.attrs["Config"]["Hostname"])

    @property
    def host_url(self) -> str:
        return self.URL.format(address=f"127.0.0.1:{self.port}")

    def accepts_clients(self) -> bool:
        # The official image runs a server for its own setup first, on a Unix socket only.
        with psycopg.connect(self.host_url.removeprefix("db+").replace("+psycopg", ""), connect_timeout=2):
            return True


class PostgreSQLTestBackend(CeleryTestBackend):  # type: ignore[misc]
    """pytest-celery's backend node for a PostgreSQL container."""


class AppWorker(CeleryWorkerContainer):  # type: ignore[misc]
    """pytest-celery's worker container, running this project's image the way the README deploys it."""

    @classmethod
    def command(cls, *args: str, **kwargs: Any) -> list[str]:
        # The README's command; two pool processes whatever the machine's cores.
        return ["celery", "-A", "celery_worker.celery", "worker", "--loglevel=info", "--concurrency=2", *args]

    @classmethod
    def worker_name(cls) -> str:
        return "celery"  # Celery's own node name, celery@<host name>, as CeleryTestWorker.hostname() says


SERVICES: dict[str, tuple[type[Any], type[CeleryTestBroker] | None, type[CeleryTestBackend] | None]] = {
    # kind: (container class, broker node class, backend node class)
    "rabbitmq": (RabbitMQ, RabbitMQTestBroker, None),
    "redis": (Redis, RedisTestBroker, RedisTestBackend),
    "postgresql": (PostgreSQL, None, PostgreSQLTestBackend),
}


def smoke_config(combination: Combination, **changes: Any) -> dict[str, Any]:
    """config/<combination>.yaml, with what the smoke tier must change in it, then `changes`."""
    data: dict[str, Any] = yaml.safe_load(combination.config_file.read_text())
    # Distinctive: the worker's log line "sleeping for 0.7 s" can only come from this file.
    data["sample_task_seconds"] = 0.7
    # Authentication and limits have tiers of their own (unit, integration/test_security.py).
    data["auth"] = False
    data["limits"] = {"start_rate": "100000/second", "unfinished_tasks": 100000}
    if combination.broker == "redis":
        # A killed worker's task comes back only once visibility_timeout has passed since it
        # was delivered: 5 s, not the file's 360, keeps the test short. The time limits stay
        # below it, as they must (else a task still running would be handed out again).
        data["celery"]["broker_transport_options"]["visibility_timeout"] = 5
        data["celery"].update(task_soft_time_limit=4, task_time_limit=4.5)
        data["sample_task_max_seconds"] = 3  # and the longest task the API accepts below them
    celery_changes = changes.pop("celery", {})
    data.update(changes)
    data["celery"].update(celery_changes)
    return data


def with_port(url: str, port: int) -> str:
    """`url` pointing at another port of 127.0.0.1."""
    parts = urlsplit(url)
    credentials = parts.netloc.rpartition("@")[0]
    return urlunsplit(parts._replace(netloc=f"{credentials}@127.0.0.1:{port}" if credentials else f"127.0.0.1:{port}"))


@dataclass
class Stack:
    """One combination's containers, on the session's Docker network, and how to start more workers."""

    combination: Combination
    client: docker.DockerClient
    network: str
    secret_key: str
    tmp: Path
    prefix: str
    broker: CeleryTestBroker
    backend: CeleryTestBackend
    worker: CeleryTestWorker | None = None
    config: Path | None = None  # the config file of the session's worker and app
    volume: str | None = None  # the same file, for containers
    app: Flask | None = None
    created: list[Any] = field(default_factory=list)  # containers and volumes, removed at the end

    def write_config(self, name: str, **changes: Any) -> Path:
        """A config file for this combination (smoke_config), readable by the test process."""
        path = self.tmp / f"{self.combination.name}-{name}.yaml"
        path.write_text(yaml.safe_dump(smoke_config(self.combination, **changes)))
        path.chmod(0o600)
        return path

    def config_volume(self, config: Path) -> str:
        """A Docker volume holding `config` as api-config.yaml, private to the image's user, as deployed."""
        volume = self.client.volumes.create(f"{self.prefix}-{config.stem}", labels={self.prefix: ""})
        self.created.append(volume)
        archive = io.BytesIO()
        with tarfile.open(fileobj=archive, mode="w") as tar:
            data = config.read_bytes()
            info = tarfile.TarInfo("api-config.yaml")
            info.size, info.mode, info.uid, info.gid = len(data), 0o600, SERVICE_UID, SERVICE_UID
            tar.addfile(info, io.BytesIO(data))
        # Written through a container that never starts: no image of its own is needed.
        helper = self.client.containers.create(APP_IMAGE, volumes={volume.name: {"bind": SECRETS_DIR}})
        try:
            helper.put_archive(SECRETS_DIR, archive.getvalue())
        finally:
            helper.remove(force=True)
        return str(volume.name)

    def cluster_config(self) -> dict[str, Any]:
        """pytest-celery's worker cluster config: container-network URLs of the broker and backend."""
        return {
            "celery_broker_cluster_config": CeleryBrokerCluster(self.broker).config(),
            "celery_backend_cluster_config": CeleryBackendCluster(self.backend).config(),
        }

    def run_worker(self, volume: str, name: str) -> Container:
        """A worker container of the app's image, its config from `volume`; not waited for."""
        # pytest-celery passes the container URLs as CELERY_BROKER_URL / CELERY_RESULT_BACKEND,
        # which the app's settings take over the file's.
        environment = {**AppWorker.initial_env(self.cluster_config()), "FLASK_SECRET_KEY": self.secret_key}
        container = self.client.containers.run(
            APP_IMAGE,
            AppWorker.command(),
            detach=True,
            name=f"{self.prefix}-{self.combination.name}-{name}",
            labels={self.prefix: ""},
            network=self.network,
            environment=environment,
            volumes={volume: {"bind": SECRETS_DIR, "mode": "ro"}},
        )
        self.created.append(container)
        return container

    def start_worker(self, volume: str, name: str) -> CeleryTestWorker:
        """A worker container, once it is ready, as pytest-celery's worker node."""
        worker = CeleryTestWorker(AppWorker(self.run_worker(volume, name)), app=self.celery_app)
        wait_until_ready(worker.container)
        return worker

    def app_from(self, config: Path, **environment: str) -> Flask:
        """The app as the test process builds it from `config`: the file, then local URLs from the environment."""
        environment = {
            "FLASK_CONFIG": str(config),
            "FLASK_SECRET_KEY": self.secret_key,
            "CELERY_BROKER_URL": self.broker.config()["host_url"],
            "CELERY_RESULT_BACKEND": self.backend.config()["host_url"],
            **environment,
        }
        with pytest.MonkeyPatch.context() as patch:
            for name, value in environment.items():
                patch.setenv(name, value)
            return create_app()

    @property
    def celery_app(self) -> Any:
        return self.app.extensions["celery"] if self.app else None


def run_service(client: docker.DockerClient, kind: str, name: str, network: str, prefix: str) -> CeleryTestContainer:
    """A broker or backend container of `kind`, published on 127.0.0.1; not waited for."""
    container_cls = SERVICES[kind][0]
    options: dict[str, Any] = {"environment": container_cls.initial_env()}
    if kind == "redis":
        options["command"] = container_cls.command()
    raw = client.containers.run(
        container_cls.image(),
        detach=True,
        name=f"{prefix}-{name}",
        labels={prefix: ""},
        network=network,
        ports={container_cls.SERVICE_PORT: ("127.0.0.1", None)},
        **options,
    )
    return container_cls(raw)


def wait_until_ready(container: Any, timeout: float = 120) -> None:
    """Until the service accepts a client (a worker: says "ready."); fail with its log if it exits or times out."""
    deadline = time.monotonic() + timeout
    while True:
        container.reload()
        if container.status == "exited":
            pytest.fail(f"{container.name} exited:\n{container.logs()[-3000:]}", pytrace=False)
        if container.status == "running" and _ready(container):
            return
        if time.monotonic() > deadline:
            pytest.fail(f"{container.name} not ready in {timeout} s:\n{container.logs()[-3000:]}", pytrace=False)
        time.sleep(0.1)


def _ready(container: Any) -> bool:
    if isinstance(container, AppWorker):
        return bool(container.ready_prompt in container.logs())
    try:
        return bool(container.accepts_clients())
    except Exception:  # not yet: refused, reset by Docker's proxy, still booting
        return False


def remove(resources: Iterable[Any]) -> None:
    """Remove containers (at once, killing them), then volumes; those already gone are skipped."""
    from docker.errors import NotFound

    containers_first = sorted(resources, key=lambda resource: not hasattr(resource, "kill"))
    for resource in containers_first:
        with contextlib.suppress(NotFound):
            resource.remove(force=True)
