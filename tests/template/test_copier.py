"""`copier copy` of this template: a service named as asked, with none of the template's own files or paths."""

from __future__ import annotations

import filecmp
import re
import sys
from pathlib import Path

import pytest
import yaml

from tests import ROOT
from tests.template.conftest import LONG, NAMES, Service, generate, nox, run

pytestmark = pytest.mark.template

# In the template, not in a service: copier.yml's _exclude, and the sources of rendered files.
# Of docs/, its pages but the index (the service's own, from docs/index.md.jinja); the build is shared.
TEMPLATE_ONLY = (
    "copier.yml",
    "bench/",
    "requirements-bench.in",
    "requirements-bench.txt",
    "tests/template/",
    "tests/mutation-survivors.md",
    *(f"docs/{page.name}" for page in sorted((ROOT / "docs").glob("*.md")) if page.name != "index.md"),
)
# A reference to a path of the template's own: its tests, its benchmarks (folder or module), the old generator.
TEMPLATE_PATH = re.compile(r"tests[/.]template|\bbench\b|new_service")
# The noxfile's `if TEMPLATE:` blocks (its sessions template and bench): one noxfile serves both, so
# that `copier update` merges it, and the blocks are dead where copier.yml is not.
TEMPLATE_BLOCK = re.compile(r"^( *)if TEMPLATE:\n(?:\1 .*\n|\n)*", re.MULTILINE)
# In a service's own directory: the title of its API description, then its page.
SHOW_NAME = (
    "from app import create_app; client = create_app().test_client(); "
    "print(client.get('/openapi.json').json['info']['title']); print(client.get('/').get_data(as_text=True))"
)
# A service's nox sessions: the template's but `template` and `bench`.
SESSIONS = [
    "browser",
    "compose",
    "coverage",
    "docs",
    "ha",
    "integration",
    "lint",
    "lock",
    "mutation",
    "repeat",
    "smoke",
    "tests",
    "unit",
]


def references_to_the_templates_own_paths(service: Path) -> list[str]:
    """Where the service's configuration (its files at the top, in .ci/, .github/, config/) names one."""
    files = [*service.glob("*"), *service.glob(".ci/*"), *service.glob(".github/**/*"), *service.glob("config/*")]
    found = []
    for path in sorted(path for path in files if path.is_file()):
        text = path.read_text(encoding="utf-8")
        if path.name == "noxfile.py":
            text = TEMPLATE_BLOCK.sub("", text)
        found += [f"{path.relative_to(service)}: {match[0]}" for match in TEMPLATE_PATH.finditer(text)]
    return found


@NAMES
def test_a_service_bears_its_name_and_none_of_the_templates_own_files(service: Service) -> None:
    """Its README, docs, compose images and answers name it; no template file, path, session or section is left."""
    name = service.path.name
    assert (service.path / "README.md").read_text().startswith(f"# {name}\n")  # not the template's
    assert (service.path / "docs/index.md").read_text().startswith(f"# {name}\n")
    compose = yaml.safe_load((service.path / "docker-compose.yml").read_text())
    assert {compose["services"][role]["image"] for role in ("web", "worker", "flower")} == {name, f"{name}-flower"}
    answers = yaml.safe_load((service.path / ".copier-answers.yml").read_text())
    assert (answers["service_name"], answers["_commit"]) == (name, "v1.0.0")
    assert [path for path in TEMPLATE_ONLY if (service.path / path).exists()] == []
    assert list(service.path.rglob("*.jinja")) == []
    assert references_to_the_templates_own_paths(service.path) == []
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
    compared = kept | (rendered - {"README.md", "docs/index.md", ".copier-answers.yml"})
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
