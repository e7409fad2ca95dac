"""`copier update`: a later template version merges into a service that added its first task."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

from tests.template.conftest import commit, generate, nox, outcomes, run
from tests.template.guide import follow

pytestmark = pytest.mark.template

UPDATE = [sys.executable, "-m", "copier", "update", "--trust", "--defaults"]
# The later version's changes, in files a service does not change.
CONTRACT_LINE = "A later template version's line.\n"
EMBEDDED_LINE = "# A later template version's line.\n"


@pytest.fixture
def versions(template_repo: Path, tmp_path: Path) -> Path:
    """A clone of the template snapshot, at v1.0.0, to tag later versions in."""
    clone = tmp_path / "template"
    run(["git", "clone", "-q", str(template_repo), str(clone)], tmp_path)
    return clone


def changed_files(repository: Path) -> list[str]:
    """`git status --porcelain` of `repository`, one entry a line."""
    return run(["git", "status", "--porcelain"], repository).stdout.splitlines()


def test_an_update_brings_the_templates_change_and_keeps_the_services_task(versions: Path, tmp_path: Path) -> None:
    """v1.0.0, a task added, then v1.1.0: no conflict, the template's change in, the task intact, unit tier green."""
    service = generate(versions, tmp_path / "invoices", "invoices")
    commit(service, "generated")
    follow(service)
    commit(service, "the first task")
    contract = Path("app/web/contract.py")
    text = (versions / contract).read_text()
    (versions / contract).write_text(text.replace('"""\n', f'\n{CONTRACT_LINE}"""\n', 1))
    with (versions / "config/embedded.yaml").open("a") as embedded:
        embedded.write(EMBEDDED_LINE)
    commit(versions, "a later version")
    run(["git", "tag", "v1.1.0"], versions)

    run(UPDATE, service)

    assert sorted(changed_files(service)) == [
        " M .copier-answers.yml",
        " M app/web/contract.py",
        " M config/embedded.yaml",
    ]
    assert (service / contract).read_text() == (versions / contract).read_text()
    assert (service / "config/embedded.yaml").read_text().endswith(EMBEDDED_LINE)
    assert yaml.safe_load((service / ".copier-answers.yml").read_text())["_commit"] == "v1.1.0"
    report = tmp_path / "unit.xml"
    nox(service, "-s", "unit", "--", "-p", "no:cacheprovider", f"--junitxml={report}")
    tests = outcomes(report)
    assert set(tests.values()) == {"passed"} and "test_an_invoice_is_rendered" in tests


def test_an_update_of_a_service_at_the_latest_version_changes_nothing(template_repo: Path, tmp_path: Path) -> None:
    """Generated from the latest version and committed, `copier update` leaves no change behind."""
    service = generate(template_repo, tmp_path / "orders", "orders")
    commit(service, "generated")
    run(UPDATE, service)
    assert changed_files(service) == []
