"""A service generated with the first task its README shows: its own lint, unit and integration tiers, its docs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.integration import services
from tests.integration.conftest import require_docker
from tests.template import guide
from tests.template.conftest import LONG, NAMES, NO_SERVICES, Service, nox, outcomes

pytestmark = pytest.mark.template

# Of the integration tier: the guide's test and those a new task and endpoint change the
# outcome of. The rest runs the template's code unchanged, which the template's own tier
# runs; its fault tests need Docker to start containers of their own.
INTEGRATION_FILES = ["test_invoices.py", "test_openapi.py", "test_routes.py", "test_tasks.py"]
# The service's own test_docs.py checks its README's and docs' command blocks (and runs the README's).
PAGE_TESTS = {
    "test_every_command_block_runs_or_says_why_not[README.md]",
    "test_every_command_block_runs_or_says_why_not[docs/index.md]",
    "test_a_pages_commands_run_as_written_in_a_fresh_copy[README.md]",
}


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
    """Its `nox -s unit` passes with Docker unreachable: the first task's tests, its README's and docs' blocks too."""
    report = tmp_path / "unit.xml"
    arguments = ["-s", "unit", "--", "-p", "no:cacheprovider", f"--junitxml={report}"]
    nox(service.path, *arguments, DOCKER_HOST="unix:///nonexistent/docker.sock")
    tests = outcomes(report)
    assert set(tests.values()) == {"passed"} and set(tests) >= guide.UNIT_TESTS | PAGE_TESTS


@LONG
def test_a_service_with_its_first_task_builds_its_docs(service: Service) -> None:
    """Its `nox -s docs` (warnings as errors) builds its page: its name, the first task and its endpoint, from code."""
    nox(service.path, "-s", "docs")
    page = (service.path / "docs/_build/html/index.html").read_text(encoding="utf-8")
    text = re.sub(r"<[^>]+>", "", page)
    assert f"<title>{service.path.name}" in page
    assert "app.tasks.render_invoice(invoice_id: int" in text and "POST /invoices/" in text


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
