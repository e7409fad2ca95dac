"""docker-compose.yml as a user runs it: every service healthy, a task through the web container, then down.

Marked `compose`, not `integration`: `nox -s compose` (a minute: it builds the image and
boots RabbitMQ). Images from TEST_RABBITMQ_IMAGE, TEST_REDIS_IMAGE, TEST_PYTHON_IMAGE
when set (offline builds), else the compose file's defaults.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests import ROOT
from tests.integration import services
from tests.integration.conftest import RUN, require_docker
from tests.waiting import wait_until

pytestmark = pytest.mark.compose

SERVICES = {"rabbitmq", "redis", "web", "worker", "flower"}
# The compose file's image variables, from the suite's own (offline builds, mirrors).
# The one client of the stack (FLASK_AUTH_TOKENS): its token, and the hash the config holds.
TOKEN = secrets.token_urlsafe(32)
TOKEN_HASH = "sha256:" + hashlib.sha256(TOKEN.encode()).hexdigest()
BEARER = {"Authorization": f"Bearer {TOKEN}"}


IMAGE_VARIABLES = {
    "RABBITMQ_IMAGE": "TEST_RABBITMQ_IMAGE",
    "REDIS_IMAGE": "TEST_REDIS_IMAGE",
    "BASE": "TEST_PYTHON_IMAGE",
}


@dataclass(frozen=True)
class Stack:
    """A `docker-compose up` of this repository: its project name and where to reach it."""

    project: str
    web: str
    flower: str
    flower_auth: str


def compose_command(request: pytest.FixtureRequest) -> list[str]:
    """Debian's `docker-compose` (1.29), else the Compose plugin; skipped (failing under CI) without either."""
    if executable := shutil.which("docker-compose"):
        return [executable]
    if subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    message = "no docker-compose: apt-get install docker-compose"
    if request.config.getoption("--require-services") or os.environ.get("CI") == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="module")
def stack(request: pytest.FixtureRequest) -> Iterator[Stack]:
    """The whole compose file up (with the Flower profile), every service healthy; down at the end."""
    require_docker(request, "the compose test runs docker-compose: start Docker")
    project = f"{RUN}-compose"
    command = [*compose_command(request), "--project-name", project, "--profile", "flower"]
    web_port, flower_port, auth = services.free_port(), services.free_port(), f"admin:{secrets.token_hex(8)}"
    env = {
        **os.environ,
        "FLASK_AUTH_TOKENS": json.dumps({"compose": TOKEN_HASH}),
        "WEB_PORT": str(web_port),
        "FLOWER_PORT": str(flower_port),
        "FLOWER_BASIC_AUTH": auth,
        **{name: os.environ[variable] for name, variable in IMAGE_VARIABLES.items() if variable in os.environ},
    }
    try:
        subprocess.run([*command, "up", "--detach", "--build"], cwd=ROOT, env=env, check=True, capture_output=True)
        wait_until(lambda: health(project) == dict.fromkeys(SERVICES, "healthy"), lambda: health(project), 180)
        yield Stack(project, f"http://127.0.0.1:{web_port}", f"http://127.0.0.1:{flower_port}", auth)
    finally:
        subprocess.run([*command, "down", "--volumes", "--remove-orphans"], cwd=ROOT, env=env, capture_output=True)
        assert containers(project) == []  # nothing left running


IMAGE_VARIABLES = {
    "RABBITMQ_IMAGE": "TEST_RABBITMQ_IMAGE",
    "REDIS_IMAGE": "TEST_REDIS_IMAGE",
    "BASE": "TEST_PYTHON_IMAGE",
}


def containers(project: str) -> list[dict[str, Any]]:
    """The project's containers, as `docker inspect` describes them."""
    listed = subprocess.run(
        ["docker", "ps", "--all", "--quiet", "--filter", f"label=com.docker.compose.project={project}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    if not listed:
        return []
    inspected: list[dict[str, Any]] = json.loads(
        subprocess.run(["docker", "inspect", *listed], capture_output=True, text=True, check=True).stdout
    )
    return inspected


def health(project: str) -> dict[str, str]:
    """Each service's health: healthy, unhealthy, starting (or the container's state)."""
    return {
        container["Config"]["Labels"]["com.docker.compose.service"]: container["State"]
        .get("Health", {})
        .get("Status", container["State"]["Status"])
        for container in containers(project)
    }


def worker_pid(project: str) -> int:
    """The worker container's main process (the celery command), as the host sees it."""
    (worker,) = [c for c in containers(project) if c["Config"]["Labels"]["com.docker.compose.service"] == "worker"]
    pid: int = worker["State"]["Pid"]
    return pid


def call(method: str, url: str, **headers: str) -> tuple[int, Any]:
    """An HTTP request to the stack: its status and JSON body (None when not JSON)."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method=method, headers=headers), timeout=10) as answer:
            status, body = answer.status, answer.read()
    except urllib.error.HTTPError as error:
        status, body = error.code, error.read()
    try:
        return status, json.loads(body)
    except ValueError:
        return status, None


def test_a_task_posted_to_the_web_container_reaches_success(stack: Stack) -> None:
    """POST through the web container, run by the worker container: SUCCESS; the request id comes back."""
    assert call("POST", f"{stack.web}/task/")[0] == 401  # authentication is on
    status, body = call("POST", f"{stack.web}/task/", **{"X-Request-ID": "compose-1"}, **BEARER)
    assert status == 202
    location = f"{stack.web}/task/{body['task_id']}"
    wait_until(lambda: call("GET", location, **BEARER)[1]["state"] == "SUCCESS", lambda: call("GET", location), 60)
    assert call("GET", f"{stack.web}/metrics")[0] == 404  # on the internal port only


def test_the_internal_port_answers_inside_the_web_container_only(stack: Stack) -> None:
    """gunicorn also binds 127.0.0.1:9090 in the container: /metrics and /readyz's reasons there, never published."""
    (web,) = [c for c in containers(stack.project) if c["Config"]["Labels"]["com.docker.compose.service"] == "web"]
    fetch = "import urllib.request as u; print(u.urlopen('http://127.0.0.1:9090/readyz', timeout=5).read().decode())"
    answer = subprocess.run(["docker", "exec", web["Id"], "python3", "-c", fetch], capture_output=True, text=True)
    assert json.loads(answer.stdout) == {"status": "ok", "checks": {"broker": "ok", "result_backend": "ok"}}
    assert "9090/tcp" not in (web["NetworkSettings"]["Ports"] or {})


def test_flower_answers_only_with_its_password(stack: Stack) -> None:
    """The optional Flower: 401 without the basic-auth credentials from the environment, 200 with them."""
    token = base64.b64encode(stack.flower_auth.encode()).decode()
    assert call("GET", f"{stack.flower}/")[0] == 401
    assert call("GET", f"{stack.flower}/", Authorization=f"Basic {token}")[0] == 200


def test_the_worker_turns_unhealthy_when_frozen_and_healthy_again(stack: Stack) -> None:
    """SIGSTOP to the worker's main process: its own health check (a process of its own) fails within 30 s."""
    pid = worker_pid(stack.project)
    os.kill(pid, signal.SIGSTOP)
    try:
        wait_until(lambda: health(stack.project)["worker"] == "unhealthy", lambda: health(stack.project), 30)
    finally:
        os.kill(pid, signal.SIGCONT)
    wait_until(lambda: health(stack.project)["worker"] == "healthy", lambda: health(stack.project), 30)
