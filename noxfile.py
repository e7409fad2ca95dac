"""Developer sessions. `nox -s tests` runs every test tier; `nox -s lint` checks style and types."""

from __future__ import annotations

import random
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import nox

nox.needs_version = ">=2024.3.2"
nox.options.sessions = ["lint", "tests"]
nox.options.reuse_venv = "yes"


UNIT_TIER = "not integration and not template"


def install(session: nox.Session) -> None:
    session.install("-r", "requirements-dev.txt")


@nox.session
def tests(session: nox.Session) -> None:
    """Every tier: unit, then integration (services chosen as the README describes)."""
    install(session)
    session.run("pytest", *session.posargs)


@nox.session
def unit(session: nox.Session) -> None:
    """The eager unit tier only: no services, a few seconds (the template test is left out)."""
    install(session)
    session.run("pytest", "-m", UNIT_TIER, *session.posargs)


@nox.session
def integration(session: nox.Session) -> None:
    """The integration tier only: a real broker, result backend and worker."""
    install(session)
    session.run("pytest", "-m", "integration", *session.posargs)


@nox.session
def repeat(session: nox.Session) -> None:
    """The unit tier 20 times and the integration tier 3 times, each run in a new random order.

    Prints each run's seed and, at the end, the failed runs: replay one with
    `pytest -m ... --randomly-seed=SEED`.
    """
    install(session)
    report = Path(session.create_tmp()) / "junit.xml"
    failed: list[str] = []
    for tier, marker, runs in (("unit", UNIT_TIER, 20), ("integration", "integration", 3)):
        for run in range(1, runs + 1):
            seed = random.randrange(2**32)
            session.log(f"{tier} tier, run {run} of {runs}: --randomly-seed={seed}")
            command = ["pytest", "-m", marker, "-q", f"--randomly-seed={seed}"]
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
    """Every tier under branch coverage of app/, worker subprocesses included; fails below 100 %."""
    install(session)
    session.run("coverage", "erase")
    session.run("coverage", "run", "-m", "pytest", *session.posargs)
    session.run("coverage", "combine", "--quiet")
    session.run("coverage", "report")


@nox.session
def mutation(session: nox.Session) -> None:
    """Mutation testing of app/ against the unit tier (mutmut, about a minute); not in `tests`."""
    install(session)
    session.run("mutmut", "run", *session.posargs)
    session.run("mutmut", "results")


@nox.session
def lint(session: nox.Session) -> None:
    """ruff (lint and format), mypy (strict on app/), the CI workflow against its schema."""
    install(session)
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy")
    session.run("check-jsonschema", "--builtin-schema", "vendor.github-workflows", ".github/workflows/ci.yml")


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks of the running stack (README, "Benchmarks"); needs wrk (apt-get install wrk)."""
    install(session)
    session.run("python", "-m", "bench", *session.posargs)
