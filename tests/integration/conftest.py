"""Integration tier: a real broker and result backend, and a worker embedded in this process."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import celery.contrib.testing.tasks  # noqa: F401  (the session worker pings with `celery.ping`)
import pytest
import yaml
from celery import Celery
from celery.worker import WorkController
from celery.worker import state as worker_state
from flask import Flask, g
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

import tests.tasks  # noqa: F401  (registers the probe tasks with every Celery app)
from app import create_app
from tests import ROOT
from tests.integration import services

WriteConfig = Callable[..., Path]
# Every queue, exchange and key the tests make on the services starts with this, so that
# they meet nothing of anybody else's there and leave nothing behind (services.remove_run_data).
RUN = f"flask-celery-factory-tests-{uuid.uuid4().hex[:8]}"
# The fault tests' Redis requires it, and they check that no response or log shows it.
REDIS_PASSWORD = "s3cret-redis-password"
# Seconds a request may take when a dependency stops answering. The README says "within
# about 2 s": the timeouts of CELERY_DEFAULTS add up to 2.0 s (2.01-2.02 measured). Twice
# that leaves a loaded 2-core machine its slack and still fails a hang, Redis's write
# retries (a minute) or Celery's own 4 s connect timeout (8.5 s); the retry counts
# themselves are pinned in the unit tier (test_dependencies.py).
IN_TIME = 4


def require_docker(request: pytest.FixtureRequest, what: str) -> None:
    """Skip unless a Docker engine answers; fail instead under CI or --require-services."""
    if (reason := services.docker_unavailable_reason()) is not None:
        message = f"{what} ({reason})"
        if request.config.getoption("--require-services") or os.environ.get("CI") == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)


@pytest.fixture(scope="session")
def service_urls(request: pytest.FixtureRequest) -> Iterator[services.Services]:
    """Broker and backend URLs: from the environment, else containers, else skip (fail in CI)."""
    if (found := services.from_environment()) is not None:
        yield found
        return
    require_docker(
        request, "no broker and result backend: set TEST_BROKER_URL and TEST_RESULT_BACKEND, or start Docker"
    )
    with services.containers() as started:
        yield started.services


@pytest.fixture(scope="session")
def fault_containers(request: pytest.FixtureRequest) -> Iterator[Future[services.Containers]]:
    """A RabbitMQ and a Redis for the fault tests alone, to pause and restart; starting in the background."""
    require_docker(request, "fault tests need containers they may break: start Docker")
    with ExitStack() as stack, ThreadPoolExecutor(1) as pool:  # the pool joins, then the stack removes them
        yield pool.submit(stack.enter_context, services.containers(fixed_ports=True, redis_password=REDIS_PASSWORD))


@pytest.fixture(scope="session")
def own(fault_containers: Future[services.Containers]) -> services.Containers:
    """A RabbitMQ and a Redis of the tests' own, to pause, restart, or fill with what a shared one must not get."""
    return fault_containers.result()


@pytest.fixture(scope="session", autouse=True)
def _start_fault_containers_early(request: pytest.FixtureRequest) -> None:
    """When fault tests are selected and Docker runs, their containers boot while other tests run."""
    uses = any("own" in item.fixturenames for item in request.session.items)
    if uses and services.docker_unavailable_reason() is None:
        request.getfixturevalue("fault_containers")


@pytest.fixture(scope="session")
def run_queues(service_urls: services.Services) -> Iterator[set[str]]:
    """The queues this run's configs name; when the run ends, all it made on the services goes."""
    queues: set[str] = set()
    yield queues
    services.remove_run_data(service_urls, RUN, queues)


@pytest.fixture(scope="session")
def write_config(
    tmp_path_factory: pytest.TempPathFactory, service_urls: services.Services, run_queues: set[str]
) -> WriteConfig:
    """Write a config file for the services found, with changes; returns its path.

    Each config has a queue of its own; every name on the services starts with RUN.
    """

    def write(name: str, **changes: Any) -> Path:
        celery = {
            "broker_url": service_urls.broker_url,
            "result_backend": service_urls.result_backend,
            "task_default_queue": f"{RUN}.{name}",
            "control_exchange": RUN,  # remote control and events: not the workers of the services' users
            "event_exchange": f"{RUN}.events",
            "result_backend_transport_options": {"global_keyprefix": f"{RUN}:"},
            **changes.pop("celery", {}),
        }
        run_queues.add(celery["task_default_queue"])
        data = {
            # Without authentication unless a test says otherwise (test_security.py does);
            # limits counted in memory, far above what a test starts, unless it says otherwise.
            "auth": False,
            "limits": {"start_rate": "100000/second", "unfinished_tasks": 100000, "storage_url": "memory://"},
            "sample_task_seconds": 0,
            # Retries come quickly and give up soon: the retry tests wait for both.
            "retry_attempts": 3,
            "retry_backoff_seconds": 0.2,
            "celery": celery,
            **changes,
        }
        path = tmp_path_factory.mktemp("config") / f"{name}.yaml"
        path.write_text(yaml.safe_dump(data))
        path.chmod(0o600)  # it may hold a password
        return path

    return write


def create_app_from(path: Path, **test_config: Any) -> Flask:
    """create_app() as the entrypoints call it, with FLASK_CONFIG pointing at `path`."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FLASK_CONFIG", str(path))
        return create_app(test_config)


@pytest.fixture(scope="session")
def app(write_config: WriteConfig) -> Flask:
    """The app under test, created from a file written once the services' ports are known."""
    app = create_app_from(write_config("main"), MARKER="main")
    # Records, for each app context torn down, the id a probe task left in `g`.
    app.extensions["torn_down"] = torn_down = []
    app.teardown_appcontext(lambda error: torn_down.append(g.get("probe_task_id")))
    return app


@pytest.fixture(scope="session")
def celery_session_app(app: Flask) -> Celery:
    """pytest-celery's session worker serves the factory's own Celery app, not a test app of its making."""
    celery_app: Celery = app.extensions["celery"]
    return celery_app


@pytest.fixture(scope="session")
def celery_worker_pool() -> str:
    """The embedded worker runs tasks in its own thread of this process."""
    return "solo"


@pytest.fixture(scope="session")
def celery_worker_parameters() -> dict[str, Any]:
    """Pings before the first test; a task may take its time to finish when the session ends."""
    return {"perform_ping_check": True, "shutdown_timeout": 30}


@pytest.fixture(scope="session")
def embedded_worker(celery_session_worker: WorkController) -> Iterator[WorkController]:
    """pytest-celery's session worker (Celery's classic fixture), stopped in milliseconds at the end."""
    yield celery_session_worker
    # start_worker stops the thread with a flag its event loop reads between two polls,
    # and a poll lasts up to 10 s when no timer is due. A callback queued from another
    # thread wakes the poll: stopping takes milliseconds. It runs in the worker's thread,
    # whose result backend it closes.
    worker_state.should_terminate = 0
    celery_session_worker.hub.call_soon(close_thread_backend, celery_session_worker.app)


def close_thread_backend(celery_app: Celery) -> None:
    """Close the Redis sockets of this thread's result backend (Celery makes one per thread).

    Left to a thread that ends, they would be garbage in redis-py's reference cycles: the
    cyclic collector may finalize a socket before the connection that closes it, and the
    ResourceWarning fails whichever test runs then, or the session when it ends.
    """
    if pool := getattr(getattr(celery_app.backend, "client", None), "connection_pool", None):
        pool.disconnect()


def wait_for_state(client: FlaskClient, location: str, state: str, timeout: float = 30) -> dict[str, Any]:
    """Poll GET `location` until the task reaches `state`; fail with the last answer if not."""
    deadline = time.monotonic() + timeout
    while True:
        response = client.get(location)
        assert response.status_code == 200, response.json
        if response.json["state"] == state or time.monotonic() > deadline:
            assert response.json["state"] == state, response.json
            return dict(response.json)
        time.sleep(0.05)


def at_once(
    client: FlaskClient, *requests: str, headers: dict[str, str] | None = None
) -> list[tuple[TestResponse, float]]:
    """Send requests ("POST /task/") together, each from its own client; each response with its seconds."""

    def send(request: str) -> tuple[TestResponse, float]:
        method, path = request.split()
        started = time.monotonic()
        try:
            response = client.application.test_client().open(path, method=method, headers=headers)
        finally:
            close_thread_backend(client.application.extensions["celery"])
        return response, time.monotonic() - started

    with ThreadPoolExecutor(len(requests)) as pool:
        return list(pool.map(send, requests))


@contextmanager
def cli_worker(
    config: Path, log: Path, *options: str, pool: str = "solo", env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """`celery -A celery_worker.celery worker` in a subprocess, as in production (with `env` added)."""
    # Without mingle and gossip: they only wait a second for other workers' replies.
    command = [sys.executable, "-m", "celery", "-A", "celery_worker.celery", "worker", f"--pool={pool}"]
    command += ["--without-mingle", "--without-gossip", *options]
    with log.open("w") as output:
        # Its own process group, so that a test can kill it together with its pool processes.
        worker = subprocess.Popen(
            command,
            cwd=ROOT,
            env={**os.environ, **(env or {}), "FLASK_CONFIG": str(config)},
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            yield worker
        finally:
            worker.terminate()
            worker.wait(timeout=60)


@pytest.fixture
def client(app: Flask, embedded_worker: WorkController) -> FlaskClient:
    """A test client of `app`, with the worker running."""
    return app.test_client()
