"""`copier copy` of this template: a service green at birth, and with the first task its README shows."""

from __future__ import annotations

import filecmp
import re
import sys
from pathlib import Path
from typing import NamedTuple

import pytest
import yaml

from tests.integration import services
from tests.integration.conftest import require_docker
from tests.template import guide
from tests.template.conftest import NO_SERVICES, generate, nox, outcomes, run
from tests.template.guide import follow

pytestmark = pytest.mark.template

LONG_NAME = "invoice_rendering_service"
NAMES = pytest.mark.parametrize("service", ["x", "orders", LONG_NAME], ids=["x", "orders", "long"], indirect=True)
LONG = pytest.mark.parametrize("service", [LONG_NAME], ids=["long"], indirect=True)
# Of the integration tier: the guide's test and those a new task and endpoint change the
# outcome of. The rest runs the template's code unchanged, which the template's own tier
# runs; its fault tests need Docker to start containers of their own.
INTEGRATION_FILES = ["test_invoices.py", "test_openapi.py", "test_routes.py", "test_tasks.py"]
# In the template, not in a service: copier.yml's _exclude, and the sources of rendered files.
TEMPLATE_ONLY = (
    "copier.yml",
    "bench/",
    "docs/",
    "requirements-docs.txt",
    "tests/template/",
    "tests/mutation-survivors.md",
)
# In a service's own directory: the title of its API description, then its page.
SHOW_NAME = (
    "from app import create_app; client = create_app().test_client(); "
    "print(client.get('/openapi.json').json['info']['title']); print(client.get('/').get_data(as_text=True))"
)
# A service's nox sessions: the template's but `template`, `bench` and `docs`.
SESSIONS = [
    "browser",
    "compose",
    "coverage",
    "ha",
    "integration",
    "lint",
    "mutation",
    "repeat",
    "smoke",
    "tests",
    "unit",
]


class Service(NamedTuple):
    """A generated service, and the files its README's first task made it change or add."""

    path: Path
    touched: list[str]


@pytest.fixture(scope="module")
def generated() -> dict[str, Service]:
    """The services this module generated, by name: each is made once, whatever the tests' order."""
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


@NAMES
def test_a_service_bears_its_name_and_none_of_the_templates_own_files(service: Service) -> None:
    """Its README, compose images and answers name it; no template file, session or README section is left."""
    name = service.path.name
    assert (service.path / "README.md").read_text().startswith(f"# {name}\n")  # not the template's
    compose = yaml.safe_load((service.path / "docker-compose.yml").read_text())
    assert {compose["services"][role]["image"] for role in ("web", "worker", "flower")} == {name, f"{name}-flower"}
    answers = yaml.safe_load((service.path / ".copier-answers.yml").read_text())
    assert (answers["service_name"], answers["_commit"]) == (name, "v1.0.0")
    assert [path for path in TEMPLATE_ONLY if (service.path / path).exists()] == []
    assert list(service.path.rglob("*.jinja")) == []
    sessions = re.findall(r"^[*-] (\w+) ->", nox(service.path, "--list").stdout, re.MULTILINE)
    assert sorted(sessions) == SESSIONS


@LONG
def test_a_services_page_and_api_description_bear_its_name(service: Service) -> None:
    """Its page's title and its OpenAPI title are its name, not the template's (app/service.py.jinja)."""
    config = {"FLASK_CONFIG": "config/embedded.yaml", "FLASK_SECRET_KEY": "template-test-" * 4}
    shown = run([sys.executable, "-c", SHOW_NAME], service.path, True, **config)
    title, page = shown.stdout.split("\n", 1)
    assert title == service.path.name
    assert f"<title>{service.path.name}</title>" in page


@NAMES
def test_a_service_with_its_first_task_passes_its_lint(service: Service, mypy_cache: str) -> None:
    """The service's `nox -s lint` (ruff, ruff format, strict mypy, the workflow's schema) passes, task added."""
    output = nox(service.path, "-s", "lint", MYPY_CACHE_DIR=mypy_cache).stderr
    assert "Session lint was successful" in output


@LONG
def test_the_first_task_changes_two_source_files_and_adds_its_two_tests(service: Service) -> None:
    """The README's guide: the task in app/tasks.py, its endpoint in app/routes.py, a unit and an integration test."""
    assert service.touched == guide.FILES


@LONG
def test_a_service_with_its_first_task_passes_its_unit_tier_without_docker(service: Service, tmp_path: Path) -> None:
    """Its `nox -s unit` passes with Docker unreachable, the first task's unit tests among those run."""
    report = tmp_path / "unit.xml"
    arguments = ["-s", "unit", "--", "-p", "no:cacheprovider", f"--junitxml={report}"]
    nox(service.path, *arguments, DOCKER_HOST="unix:///nonexistent/docker.sock")
    tests = outcomes(report)
    assert set(tests.values()) == {"passed"} and set(tests) >= guide.UNIT_TESTS


@LONG
def test_a_service_with_its_first_task_passes_its_integration_tier(
    service: Service, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Its `nox -s integration` runs the first task on a real broker, backend and worker, and fuzzes its endpoint."""
    if services.from_environment() is None:
        require_docker(request, NO_SERVICES)
    report = tmp_path / "integration.xml"
    files = [f"tests/integration/{name}" for name in INTEGRATION_FILES]
    nox(service.path, "-s", "integration", "--", "-p", "no:cacheprovider", f"--junitxml={report}", *files)
    tests = outcomes(report)
    assert set(tests.values()) == {"passed"} and guide.INTEGRATION_TEST in tests


def test_a_service_is_the_template_but_for_its_name_and_readme(template_repo: Path, tmp_path: Path) -> None:
    """Named as the template, a service has its files byte for byte, less its own: a .jinja gone stale fails."""
    service = generate(template_repo, tmp_path / "flask-celery-factory", "flask-celery-factory")
    template_files = {str(path.relative_to(template_repo)) for path in template_repo.rglob("*") if path.is_file()}
    service_files = {str(path.relative_to(service)) for path in service.rglob("*") if path.is_file()}
    rendered = {name.removesuffix(".jinja") for name in template_files if name.endswith(".jinja")}
    kept = {
        name
        for name in template_files
        if not name.startswith((".git/", *TEMPLATE_ONLY)) and not name.endswith(".jinja") and name not in rendered
    }
    assert service_files == kept | rendered
    compared = kept | (rendered - {"README.md", ".copier-answers.yml"})
    changed = [name for name in compared if not filecmp.cmp(template_repo / name, service / name, shallow=False)]
    assert changed == []


@pytest.mark.parametrize(
    "name",
    ["Invoices", "invoices service", "9lives", "invoices-", "x" * 64],
    ids=["capitals", "space", "digit-first", "dash-last", "64-characters"],
)
def test_a_name_unusable_for_a_project_is_refused(template_repo: Path, tmp_path: Path, name: str) -> None:
    """copier stops with the rule before it writes anything."""
    command = [sys.executable, "-m", "copier", "copy", "--trust", "--defaults", "--data", f"service_name={name}"]
    done = run([*command, str(template_repo), str(tmp_path / "service")], tmp_path, check=False)
    assert done.returncode != 0
    assert "A lower-case name of at most 63 characters" in done.stderr
    assert not (tmp_path / "service").exists()
