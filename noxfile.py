"""Developer sessions. `nox -s tests` runs every test tier; `nox -s lint` checks style and types."""

from __future__ import annotations

import random
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import nox

nox.needs_version = ">=2024.3.2"
nox.options.sessions = ["lint", "tests"]
nox.options.reuse_venv = "yes"


# The unit tier: everything that needs neither services nor Docker.
UNIT_TIER = ["tests/unit"]
# In the template itself, not in a service generated from it (copier.yml's _exclude leaves
# the template's own files out, copier.yml too): what the `if TEMPLATE:` blocks do.
TEMPLATE = Path(__file__).with_name("copier.yml").exists()


# The requirements sources (`.in`), each compiled into its lock (`.txt`) after the locks its `-c` lines
# read: the runtime's first.
SOURCES = [
    "requirements",
    "requirements-otel",
    "requirements-flower",
    "requirements-dev",
    "requirements-nox",
    "requirements-docs",
]
if TEMPLATE:
    SOURCES.append("requirements-bench")  # the template's own (copier.yml's _exclude)


def install(session: nox.Session) -> None:
    # Every file checked against the lock's hashes: a package changed on the index fails the install.
    session.install("--require-hashes", "-r", "requirements-dev.txt")


@nox.session
def tests(session: nox.Session) -> None:
    """Every tier but compose and ha: unit, integration, browser, smoke (and in the template, its own test)."""
    install(session)
    session.run("pytest", "-m", "not compose and not ha", *session.posargs)


@nox.session
def unit(session: nox.Session) -> None:
    """The eager unit tier only: no services, about a minute."""
    install(session)
    session.run("pytest", *UNIT_TIER, *session.posargs)


@nox.session
def integration(session: nox.Session) -> None:
    """The integration tier only: a real broker, result backend and worker."""
    install(session)
    session.run("pytest", "-m", "integration", *session.posargs)


@nox.session
def browser(session: nox.Session) -> None:
    """The page at / in headless Chromium (Debian's `chromium`, or TEST_CHROMIUM), with real services."""
    install(session)
    session.run("pytest", "-m", "browser", *session.posargs)


@nox.session
def compose(session: nox.Session) -> None:
    """docker-compose.yml as users run it (about a minute; not in `tests`): healthy, a task through it, down."""
    install(session)
    session.run("pytest", "-m", "compose", *session.posargs)


@nox.session
def ha(session: nox.Session) -> None:
    """RabbitMQ in trouble (not in `tests`): under a resource alarm POST answers 503 at once; needs Docker."""
    install(session)
    session.run("pytest", "-m", "ha", *session.posargs)


@nox.session
def smoke(session: nox.Session) -> None:
    """The smoke tier only: each supported broker x backend in containers, the worker from the Dockerfile.

    Needs Docker; images from TEST_RABBITMQ_IMAGE, TEST_REDIS_IMAGE, TEST_POSTGRES_IMAGE and
    TEST_PYTHON_IMAGE (the Dockerfile's base) where no registry answers.
    """
    install(session)
    session.run("pytest", "-m", "smoke", *session.posargs)


@nox.session
def repeat(session: nox.Session) -> None:
    """The unit tier 20 times and the integration tier 3 times, each run in a new random order.

    Prints each run's seed and, at the end, the failed runs: replay one with
    `pytest -m ... --randomly-seed=SEED`.
    """
    install(session)
    report = Path(session.create_tmp()) / "junit.xml"
    failed: list[str] = []
    for tier, selection, runs in (("unit", UNIT_TIER, 20), ("integration", ["-m", "integration"], 3)):
        for run in range(1, runs + 1):
            seed = random.randrange(2**32)
            session.log(f"{tier} tier, run {run} of {runs}: --randomly-seed={seed}")
            command = ["pytest", *selection, "-q", f"--randomly-seed={seed}"]
            # Exit status 1 (tests failed) is counted, not fatal; anything worse stops the session.
            session.run(*command, f"--junitxml={report}", *session.posargs, success_codes=[0, 1])
            suite = ElementTree.parse(report).getroot().find("testsuite")
            if suite is None or int(suite.get("failures", 0)) + int(suite.get("errors", 0)):
                failed.append(f"{tier} tier, --randomly-seed={seed}")
    session.log(f"{len(failed)} failed run(s) of 23" + "".join(f"\n  {run}" for run in failed))
    if failed:
        session.error("some runs failed")


@nox.session
def coverage(session: nox.Session) -> None:
    """The unit and integration tiers (the browser test too) under branch coverage of app/, worker subprocesses too.

    Fails below 100 %. Left out: the smoke tier (its app code runs inside containers), compose and ha (slow).
    """
    install(session)
    session.run("coverage", "erase")
    tiers = [*UNIT_TIER, "tests/integration", "-m", "not compose and not ha"]
    session.run("coverage", "run", "-m", "pytest", *tiers, *session.posargs)
    session.run("coverage", "combine", "--quiet")
    session.run("coverage", "report")


@nox.session
def mutation(session: nox.Session) -> None:
    """Mutation testing of app/ against the unit tier (mutmut; all of app/ takes hours: name modules)."""
    install(session)
    session.run("mutmut", "run", *session.posargs)
    session.run("mutmut", "results")


@nox.session
def lock(session: nox.Session) -> None:
    """Compiles each requirements source into its lock, every dependency pinned with its hashes (uv).

    Keeps the locked versions a source still allows; `nox -s lock -- --upgrade` takes the newest
    releases it allows, `-- --upgrade-package NAME` those of one package (docs/operations.md).
    """
    install(session)
    # --universal: one lock for every platform and Python from 3.11, markers where they differ.
    options = ["--universal", "--python-version", "3.11", "--generate-hashes", "--quiet"]
    options += ["--custom-compile-command", "nox -s lock", *session.posargs]
    for name in SOURCES:
        session.run("uv", "pip", "compile", *options, f"{name}.in", "--output-file", f"{name}.txt")


@nox.session
def lint(session: nox.Session) -> None:
    """ruff (lint and format), mypy (strict on app/), the CI workflow against its schema."""
    install(session)
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy")
    if TEMPLATE:
        session.run("mypy", "bench")
    session.run("check-jsonschema", "--builtin-schema", "vendor.github-workflows", ".github/workflows/ci.yml")


@nox.session
def docs(session: nox.Session) -> None:
    """The documentation (Sphinx, furo, MyST) into docs/_build/html: warnings, broken links and anchors fail it.

    Its command blocks run in the unit tier (tests/unit/test_docs.py).
    """
    session.install("--require-hashes", "-r", "requirements-docs.txt")
    session.run("sphinx-build", "-W", "--keep-going", "-n", "-q", "-b", "html", "docs", "docs/_build/html")


if TEMPLATE:

    @nox.session
    def template(session: nox.Session) -> None:
        """The template test: generated services pass their lint, unit and integration tiers, build docs, update."""
        install(session)
        # The generated services' `nox -s docs` runs on this session's tools, as their other sessions do.
        session.install("--require-hashes", "-r", "requirements-docs.txt")
        session.run("pytest", "-m", "template", *session.posargs)

    @nox.session
    def bench(session: nox.Session) -> None:
        """Benchmarks of the running stack (docs/benchmarks.md); needs wrk (apt-get install wrk)."""
        session.install("--require-hashes", "-r", "requirements-bench.txt")
        session.run("python", "-m", "bench", *session.posargs)
