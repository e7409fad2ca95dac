"""Developer sessions. `nox -s tests` runs every test tier; `nox -s lint` checks style and types."""

from __future__ import annotations

import nox

nox.needs_version = ">=2024.3.2"
nox.options.sessions = ["lint", "tests"]
nox.options.reuse_venv = "yes"


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
    session.run("pytest", "-m", "not integration and not template", *session.posargs)


@nox.session
def integration(session: nox.Session) -> None:
    """The integration tier only: a real broker, result backend and worker."""
    install(session)
    session.run("pytest", "-m", "integration", *session.posargs)


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
