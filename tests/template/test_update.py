"""`copier update`: a later template version merges into a service that added its first task."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

from tests.integration import services
from tests.integration.conftest import require_docker
from tests.template import guide
from tests.template.conftest import NO_SERVICES, commit, generate, nox, outcomes, run

pytestmark = pytest.mark.template

UPDATE = [sys.executable, "-m", "copier", "update", "--trust", "--defaults"]
# The later version's changes, in files a service does not change.
CONTRACT_LINE = "A later template version's line.\n"
EMBEDDED_LINE = "# A later template version's line.\n"
TASKS_LINE = "A later template version's line about the tasks.\n"


@pytest.fixture
def versions(template_repo: Path, tmp_path: Path) -> Path:
    """A clone of the template snapshot, at v1.0.0, to tag later versions in."""
    clone = tmp_path / "template"
    run(["git", "clone", "-q", str(template_repo), str(clone)], tmp_path)
    return clone


def changed_files(repository: Path) -> list[str]:
    """`git status --porcelain` of `repository`, one entry a line."""
    return run(["git", "status", "--porcelain"], repository).stdout.splitlines()


def test_an_update_brings_the_templates_change_and_keeps_the_services_task(
    versions: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """v1.0.0, a task added, then v1.1.0: no conflict, its changes in, the task intact, its tests green.

    v1.1.0 changes files the service left alone and app/tasks.py, which its task was added
    to (far from its lines): the three-way merge keeps both.
    """
    service = generate(versions, tmp_path / "invoices", "invoices")
    commit(service, "generated")
    guide.follow(service)
    commit(service, "the first task")
    task_files = {name: (service / name).read_text() for name in guide.FILES}
    contract, tasks = Path("app/web/contract.py"), Path("app/tasks.py")
    for changed, line in ((contract, CONTRACT_LINE), (tasks, TASKS_LINE)):
        text = (versions / changed).read_text()
        (versions / changed).write_text(text.replace('"""\n', f'\n{line}"""\n', 1))
    with (versions / "config/embedded.yaml").open("a") as embedded:
        embedded.write(EMBEDDED_LINE)
    commit(versions, "a later version")
    run(["git", "tag", "v1.1.0"], versions)

    run(UPDATE, service)

    assert sorted(changed_files(service)) == [
        " M .copier-answers.yml",
        " M app/tasks.py",
        " M app/web/contract.py",
        " M config/embedded.yaml",
    ]
    assert (service / contract).read_text() == (versions / contract).read_text()
    assert (service / "config/embedded.yaml").read_text().endswith(EMBEDDED_LINE)
    merged = (service / tasks).read_text()
    assert TASKS_LINE in merged and merged.replace(f"\n{TASKS_LINE}", "", 1) == task_files[str(tasks)]
    assert {name: (service / name).read_text() for name in guide.FILES if name != str(tasks)} == {
        name: text for name, text in task_files.items() if name != str(tasks)
    }
    assert yaml.safe_load((service / ".copier-answers.yml").read_text())["_commit"] == "v1.1.0"
    report = tmp_path / "unit.xml"
    nox(service, "-s", "unit", "--", "-p", "no:cacheprovider", f"--junitxml={report}")
    tests = outcomes(report)
    assert set(tests.values()) == {"passed"} and set(tests) >= guide.UNIT_TESTS
    if services.from_environment() is None:
        require_docker(request, NO_SERVICES)
    report = tmp_path / "integration.xml"
    nox(service, "-s", "integration", "--", "-p", "no:cacheprovider", f"--junitxml={report}", guide.FILES[-1])
    assert outcomes(report) == {guide.INTEGRATION_TEST: "passed"}


def test_an_update_of_a_service_at_the_latest_version_changes_nothing(template_repo: Path, tmp_path: Path) -> None:
    """Generated from the latest version and committed, `copier update` leaves no change behind."""
    service = generate(template_repo, tmp_path / "orders", "orders")
    commit(service, "generated")
    run(UPDATE, service)
    assert changed_files(service) == []
