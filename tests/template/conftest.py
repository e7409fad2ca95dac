"""The template test's tools: a git snapshot of this template, copier, and a generated service's own commands."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple
from xml.etree import ElementTree

import pytest

from tests import ROOT
from tests.template.guide import follow

LONG_NAME = "invoice_rendering_service"
# For a test of the `service` fixture: services of each name length, or the long one only.
NAMES = pytest.mark.parametrize("service", ["x", "orders", LONG_NAME], ids=["x", "orders", "long"], indirect=True)
LONG = pytest.mark.parametrize("service", [LONG_NAME], ids=["long"], indirect=True)
# The tag of the snapshot's one commit: what `copier copy` takes by default (the latest version).
FIRST_VERSION = "v1.0.0"
NO_SERVICES = "no broker and result backend: set TEST_BROKER_URL and TEST_RESULT_BACKEND, or start Docker"
# The tools of this interpreter's environment run the generated services' sessions too:
# nothing is installed per service.
TOOLS = str(Path(sys.executable).parent)
# CI machines may have no git identity of their own.
GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "template test",
    "GIT_AUTHOR_EMAIL": "template-test@example.invalid",
    "GIT_COMMITTER_NAME": "template test",
    "GIT_COMMITTER_EMAIL": "template-test@example.invalid",
}


def pytest_configure(config: pytest.Config) -> None:
    """The marker `template` is declared here, with its tests: a service has neither (pytest.ini is shared)."""
    config.addinivalue_line("markers", "template: services generated from this template with copier pass their checks")


def run(command: list[str], cwd: Path, check: bool = True, **env: str) -> subprocess.CompletedProcess[str]:
    """Run `command` in `cwd` with `env` added (and this environment's tools first); fail showing its output."""
    environment = {name: value for name, value in os.environ.items() if name != "PYTHONPATH"}
    environment.update(GIT_IDENTITY, PATH=f"{TOOLS}{os.pathsep}{os.environ['PATH']}", **env)
    done = subprocess.run(command, cwd=cwd, env=environment, capture_output=True, text=True)
    if check and done.returncode != 0:
        output = f"{done.stdout[-6000:]}\n{done.stderr[-6000:]}"
        pytest.fail(f"{' '.join(command)} exited {done.returncode} in {cwd}:\n{output}", pytrace=False)
    return done


def nox(service: Path, *arguments: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The service's own nox sessions, run with this environment's tools (no virtualenv, nothing installed)."""
    return run([sys.executable, "-m", "nox", "--no-venv", "--no-install", *arguments], service, **env)


def generate(template: Path, destination: Path, name: str, *options: str) -> Path:
    """`copier copy` of `template` into `destination`, named `name` (the other questions' defaults)."""
    command = [sys.executable, "-m", "copier", "copy", "--trust", "--defaults", *options]
    run([*command, "--data", f"service_name={name}", str(template), str(destination)], destination.parent)
    return destination


def commit(repository: Path, message: str) -> None:
    """Commit everything in `repository` (a new one if it is not one yet)."""
    if not (repository / ".git").exists():
        run(["git", "init", "-q"], repository)
    run(["git", "add", "-A"], repository)
    run(["git", "commit", "-qm", message], repository)


def outcomes(report: Path) -> dict[str, str]:
    """Each test of a JUnit report by name: passed, or its failure, error or skipped."""
    cases = ElementTree.parse(report).getroot().iter("testcase")
    verdicts = ("failure", "error", "skipped")
    return {
        str(case.get("name")): next((child.tag for child in case if child.tag in verdicts), "passed") for case in cases
    }


@pytest.fixture(scope="session")
def template_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The template's tracked files as they are in the work tree, committed and tagged FIRST_VERSION (no stray file)."""
    repository = tmp_path_factory.mktemp("template")
    listing = run(["git", "ls-files", "-z"], ROOT).stdout
    for name in filter(None, listing.split("\0")):
        if (source := ROOT / name).exists():  # not deleted in the work tree
            (repository / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, repository / name)
    commit(repository, "the template")
    run(["git", "tag", FIRST_VERSION], repository)
    return repository


@pytest.fixture(scope="session")
def mypy_cache(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One mypy cache for every service generated: they share most of their code."""
    return str(tmp_path_factory.mktemp("mypy-cache"))


class Service(NamedTuple):
    """A generated service, and the files its README's first task made it change or add."""

    path: Path
    touched: list[str]


@pytest.fixture(scope="session")
def generated() -> dict[str, Service]:
    """The services generated so far, by name: each is made once, whatever the tests' order."""
    return {}


@pytest.fixture
def service(
    request: pytest.FixtureRequest,
    generated: dict[str, Service],
    template_repo: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Service:
    """A service generated with the name given, then its first task added exactly as its README says."""
    name = request.param
    if name not in generated:
        path = generate(template_repo, tmp_path_factory.mktemp("services") / name, name)
        generated[name] = Service(path, follow(path))
    return generated[name]
