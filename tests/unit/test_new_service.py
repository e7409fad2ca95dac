"""scripts/new_service.py: a new service generated from this repository passes its unit tier."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from noxfile import UNIT_TIER
from tests import ROOT

SCRIPT = ROOT / "scripts" / "new_service.py"


@pytest.mark.template
def test_generated_service_has_its_package_and_passes_its_unit_tests(tmp_path: Path) -> None:
    """`orders` replaces `app` everywhere it names the package, and its unit tier is green."""
    destination = tmp_path / "orders-service"
    subprocess.run([sys.executable, str(SCRIPT), "orders", str(destination)], check=True, capture_output=True)
    assert (destination / "orders" / "__init__.py").is_file()
    assert not (destination / "app").exists()
    leftovers = [
        f"{path.relative_to(destination)}: {line}"
        for path in destination.rglob("*.py")
        for line in path.read_text().splitlines()
        if re.search(r"\b(from|import) app\b|['\"]app[.:]", line)
    ]
    assert leftovers == []
    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *UNIT_TIER],
        cwd=destination,
        capture_output=True,
        text=True,
    )
    assert tests.returncode == 0, tests.stdout[-3000:]
    assert re.search(r"\d+ passed", tests.stdout)
    for lint in (["ruff", "check", "."], ["ruff", "format", "--check", "."], ["mypy"]):
        done = subprocess.run([sys.executable, "-m", *lint], cwd=destination, capture_output=True, text=True)
        assert done.returncode == 0, f"{lint}: {done.stdout[-3000:]}{done.stderr[-1000:]}"
    readme = (destination / "README.md").read_text()
    assert "new_service" not in readme


@pytest.mark.parametrize(
    ("package", "why"),
    [("Orders", "lower-case"), ("class", "lower-case Python identifier"), ("json", "shadow"), ("app", "shadow")],
    ids=["capitals", "keyword", "stdlib", "same-name"],
)
def test_unusable_package_names_are_refused(tmp_path: Path, package: str, why: str) -> None:
    """A name that is not a lower-case identifier, or would shadow an import, stops with a reason."""
    done = subprocess.run([sys.executable, str(SCRIPT), package, str(tmp_path / "x")], capture_output=True, text=True)
    assert done.returncode == 2
    assert why in done.stderr
    assert not (tmp_path / "x").exists()
