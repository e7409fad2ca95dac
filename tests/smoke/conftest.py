"""Smoke tier: every supported broker x backend end to end, the worker a container of the production image.

Built on pytest-celery's ``celery_setup``. Its node fixtures are overridden so that:

- the matrix is exactly the supported combinations (``combination``), not its default
  every-broker-times-every-backend parametrization of ``celery_broker``/``celery_backend``;
- brokers, backends and workers are started once per session, all combinations at once,
  instead of once per test; the tests get pytest-celery's nodes around them;
- the worker (``celery_worker``) runs this project's image (``celery_base_worker_image``:
  the Dockerfile) with the README's command and a config file mounted, never pytest-celery's
  default worker image (built with pip from PyPI);
- the setup's app (``celery_setup_app``) is the factory's own Celery app of the test
  process's Flask app, which reaches the services on their published ports.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any

import pytest
from celery import Celery
from flask.testing import FlaskClient
from pytest_celery import CeleryTestBackend, CeleryTestBroker, CeleryTestWorker

from tests import ROOT
from tests.integration.conftest import require_docker
from tests.smoke.stack import (
    APP_IMAGE,
    COMBINATIONS,
    PYTHON_IMAGE,
    SERVICES,
    AppWorker,
    Combination,
    Stack,
    remove,
    run_service,
    wait_until_ready,
)

if TYPE_CHECKING:
    import docker

# Names and labels of everything the session creates in Docker.
RUN = f"flask-celery-factory-smoke-{uuid.uuid4().hex[:8]}"


@pytest.fixture(params=[pytest.param(combination, id=combination.name) for combination in COMBINATIONS])
def combination(request: pytest.FixtureRequest) -> Combination:
    """The broker x backend a test runs on: each supported one in turn."""
    combination: Combination = request.param
    return combination


@pytest.fixture(scope="session")
def celery_base_worker_image(docker_client: docker.DockerClient) -> Any:
    """pytest-celery's worker image, here this project's production one: the Dockerfile on TEST_PYTHON_IMAGE."""
    image, _ = docker_client.images.build(path=str(ROOT), buildargs={"BASE": PYTHON_IMAGE}, tag=APP_IMAGE, rm=True)
    return image


@pytest.fixture(scope="session")
def smoke_stacks(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Stack]]:
    """The combinations the selected tests use, all started together, once per session; removed at its end."""
    require_docker(request, "the smoke tier runs containers: start Docker")
    selected = {item.callspec.params["combination"].name for item in request.session.items if _on_a_stack(item)}
    client: docker.DockerClient = request.getfixturevalue("docker_client")
    secret_key, tmp = secrets.token_hex(32), tmp_path_factory.mktemp("smoke")
    with ExitStack() as cleanup:
        network = client.networks.create(RUN, labels={RUN: ""})
        cleanup.callback(network.remove)
        created: list[Any] = []
        cleanup.callback(remove, created)  # before the network: last in, first out
        stacks: dict[str, Stack] = {}
        for combination in (combination for combination in COMBINATIONS if combination.name in selected):
            broker = run_service(client, combination.broker, f"{combination.name}-broker", network.name, RUN)
            backend = run_service(client, combination.backend, f"{combination.name}-backend", network.name, RUN)
            created += [broker._container, backend._container]
            broker_node, backend_node = SERVICES[combination.broker][1], SERVICES[combination.backend][2]
            assert broker_node and backend_node, f"{combination.name}: no such broker or backend"
            stacks[combination.name] = Stack(
                combination, client, network.name, secret_key, tmp, RUN, broker_node(broker), backend_node(backend)
            )
            stacks[combination.name].created = created
        # Built (from Docker's cache, usually) while the services boot.
        request.getfixturevalue("celery_base_worker_image")
        for stack in stacks.values():
            stack.config = stack.write_config("smoke")
            stack.volume = stack.config_volume(stack.config)
        for stack in stacks.values():
            wait_until_ready(stack.broker.container)
            wait_until_ready(stack.backend.container)
            stack.app = stack.app_from(stack.config)
        workers = {name: stack.run_worker(stack.volume, "worker") for name, stack in stacks.items()}
        for name, stack in stacks.items():
            stack.worker = CeleryTestWorker(AppWorker(workers[name]), app=stack.celery_app)
            wait_until_ready(stack.worker.container)
        yield stacks


def _on_a_stack(item: pytest.Item) -> bool:
    callspec = getattr(item, "callspec", None)
    return callspec is not None and isinstance(callspec.params.get("combination"), Combination)


@pytest.fixture
def stack(combination: Combination, smoke_stacks: dict[str, Stack]) -> Stack:
    """The containers of the test's combination, started for the whole session."""
    return smoke_stacks[combination.name]


@pytest.fixture
def celery_broker(stack: Stack) -> CeleryTestBroker:
    """pytest-celery's broker node: the combination's broker container."""
    return stack.broker


@pytest.fixture
def celery_backend(stack: Stack) -> CeleryTestBackend:
    """pytest-celery's backend node: the combination's result backend container."""
    return stack.backend


@pytest.fixture
def celery_worker(stack: Stack) -> CeleryTestWorker:
    """pytest-celery's worker node: the combination's worker, a container of this project's image."""
    assert stack.worker is not None
    return stack.worker


@pytest.fixture
def celery_setup_app(stack: Stack) -> Celery:
    """The setup's Celery app: the factory's own, of the test process's app (services on published ports)."""
    celery_app: Celery = stack.celery_app
    return celery_app


@pytest.fixture
def client(stack: Stack) -> FlaskClient:
    """A test client of the test process's app on the combination's services."""
    assert stack.app is not None
    return stack.app.test_client()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A failed smoke test's report ends with the logs of its combination's containers."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    stack = getattr(item, "funcargs", {}).get("stack")
    if report.failed and report.when == "call" and isinstance(stack, Stack):
        for role, node in (("broker", stack.broker), ("backend", stack.backend), ("worker", stack.worker)):
            if node is not None:
                report.sections.append((f"{stack.combination.name} {role} log", node.logs()[-3000:]))
