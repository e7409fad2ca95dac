"""The production image's web server: gunicorn answers as a non-root user, healthy by its HEALTHCHECK."""

from __future__ import annotations

import json
import time
import urllib.request
from typing import Any

import pytest
from pytest_celery import CeleryTestSetup

from tests.smoke.stack import APP_IMAGE, COMBINATIONS, SECRETS_DIR, AppWorker, Stack

pytestmark = pytest.mark.smoke


@pytest.mark.parametrize("combination", [COMBINATIONS[0]], ids=[COMBINATIONS[0].name], indirect=True)
def test_image_serves_the_api_as_a_non_root_user(celery_setup: CeleryTestSetup, stack: Stack) -> None:
    """The image's default command (gunicorn) becomes healthy, runs unprivileged, and its tasks reach the worker."""
    assert stack.volume is not None
    environment = {**AppWorker.initial_env(stack.cluster_config()), "FLASK_SECRET_KEY": stack.secret_key}
    web = stack.client.containers.run(
        APP_IMAGE,  # its own command: gunicorn on PORT (8080)
        detach=True,
        name=f"{stack.prefix}-web",
        labels={stack.prefix: ""},
        network=stack.network,
        environment=environment,
        volumes={stack.volume: {"bind": SECRETS_DIR, "mode": "ro"}},  # the worker's config file
        ports={"8080/tcp": ("127.0.0.1", None)},
    )
    stack.created.append(web)
    wait_until_healthy(web)
    for container in (web, stack.client.containers.get(celery_setup.worker.container.id)):
        assert container.exec_run(["id", "-u"]).output.decode().strip() != "0"
    web.reload()
    url = f"http://127.0.0.1:{web.attrs['NetworkSettings']['Ports']['8080/tcp'][0]['HostPort']}"
    task_id = call("POST", f"{url}/task/")["task_id"]
    deadline = time.monotonic() + 30
    while (body := call("GET", f"{url}/task/{task_id}"))["state"] != "SUCCESS":
        assert time.monotonic() < deadline, body
        time.sleep(0.1)
    celery_setup.worker.assert_log_exists(f"[{task_id}] succeeded", timeout=5)


def call(method: str, url: str) -> dict[str, Any]:
    """The JSON body of a request to the web container."""
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
        assert container.status == "running", container.logs().decode()[-3000:]
        assert time.monotonic() < deadline, container.logs().decode()[-3000:]
        time.sleep(0.2)
