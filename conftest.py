"""Hygiene shared by every tier."""

from __future__ import annotations

import os
from collections.abc import Iterator

import freezegun
import pytest

# freezegun would also freeze the clocks of kombu and Celery: result waits would never
# time out and AMQP heartbeats would stop. Only the code under test sees frozen time.
# And on each freeze it reads every attribute of every module it does not ignore, which
# runs lazy module attributes: testcontainers' config answers one by calling
# docker.from_env(), which tries to reach a Docker engine.
freezegun.configure(
    extend_ignore_list=["kombu", "celery", "amqp", "redis", "billiard", "vine", "testcontainers", "docker"]
)

# Variables the app or Celery's test worker read; a developer's shell must not leak them
# into tests (TEST_BROKER would silently redirect the embedded worker's connection).
LEAKY_VARIABLES = (
    "FLASK_CONFIG",
    "FLASK_DEBUG",
    "FLASK_SECRET_KEY",
    "CELERY_BROKER_URL",
    "CELERY_RESULT_BACKEND",
    "TEST_BROKER",
)
for variable in LEAKY_VARIABLES:
    os.environ.pop(variable, None)


@pytest.fixture(scope="session", autouse=True)
def _worker_heartbeat_file(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Workers the tests start touch a heartbeat file of the session's own, not /tmp's shared one."""
    os.environ["WORKER_HEARTBEAT_FILE"] = str(tmp_path_factory.mktemp("worker") / "heartbeat")


@pytest.fixture(autouse=True)
def _isolated_environment() -> Iterator[None]:
    """Each test starts without the app's variables, and what it sets (cli.py does) is undone."""
    saved = dict(os.environ)
    for variable in LEAKY_VARIABLES:
        os.environ.pop(variable, None)
    yield
    os.environ.clear()
    os.environ.update(saved)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--require-services",
        action="store_true",
        help="fail, rather than skip, integration tests that find no broker and backend (default under CI=true)",
    )


def pytest_report_header(config: pytest.Config) -> str | None:
    if config.option.markexpr.startswith("not integration"):
        return None  # the unit tier needs no services: don't probe Docker
    from tests.integration.services import describe

    return describe()
