"""The Dockerfile: the built image serves the API and runs the worker, as a non-root user."""

from __future__ import annotations

import json
import os
import time
import urllib.request
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from tests import ROOT
from tests.integration import services
from tests.integration.conftest import WriteConfig, require_docker

if TYPE_CHECKING:  # imported once Docker answers: a run without Docker never loads docker-py
    import docker

pytestmark = pytest.mark.integration

# The Dockerfile's BASE; the official image unless a mirror or an offline build is named.
PYTHON_IMAGE = os.environ.get("TEST_PYTHON_IMAGE", "python:3.11-slim")
TAG = "flask-celery-factory:test"


@pytest.fixture(scope="module")
def image(request: pytest.FixtureRequest) -> Iterator[docker.DockerClient]:
    """The app's image, built from this checkout."""
    require_docker(request, "the container test builds an image: start Docker")
    import docker

    client = docker.from_env()
    client.images.build(path=str(ROOT), buildargs={"BASE": PYTHON_IMAGE}, tag=TAG, rm=True)
    yield client
    client.close()


def test_image_serves_the_api_and_runs_tasks(image: docker.DockerClient, write_config: WriteConfig) -> None:
    """gunicorn in the image answers and is healthy; a worker from the same image runs the task."""
    path = write_config("container")
    path.chmod(0o644)  # read by the image's own unprivileged user
    port = services.free_port()
    # Host networking: the services and the published API stay on this machine's loopback.
    options: dict[str, Any] = {
        "detach": True,
        "network_mode": "host",
        "environment": {"PORT": str(port)},
        "volumes": {str(path): {"bind": "/run/secrets/api-config.yaml", "mode": "ro"}},
    }
    web = image.containers.run(TAG, **options)
    worker = image.containers.run(TAG, ["celery", "-A", "celery_worker.celery", "worker"], **options)
    try:
        wait_until_healthy(web)
        assert web.exec_run(["id", "-u"]).output.decode().strip() != "0"
        task_id = call("POST", f"http://127.0.0.1:{port}/task/")["task_id"]
        deadline = time.monotonic() + 60
        while (body := call("GET", f"http://127.0.0.1:{port}/task/{task_id}"))["state"] != "SUCCESS":
            assert time.monotonic() < deadline, body
            time.sleep(0.2)
    finally:
        for container in (web, worker):
            container.remove(force=True)


def call(method: str, url: str) -> dict[str, Any]:
    with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=10) as response:
        body: dict[str, Any] = json.loads(response.read())
        return body


def wait_until_healthy(container: Any, timeout: float = 60) -> None:
    """Until Docker's HEALTHCHECK (GET /healthz inside the container) passes."""
    deadline = time.monotonic() + timeout
    while True:
        container.reload()
        if container.attrs["State"].get("Health", {}).get("Status") == "healthy":
            return
        assert time.monotonic() < deadline, container.logs().decode()[-2000:]
        time.sleep(0.5)
