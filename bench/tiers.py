"""Wall time of the test tiers, each run once as users run it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Mapping

from bench import ROOT
from noxfile import UNIT_TIER
from tests.integration.services import docker_unavailable_reason


def wall_times() -> dict[str, float]:
    """Seconds per tier: unit; integration on containers (if Docker runs) and on TEST_* URLs (if set)."""
    without_urls = {k: v for k, v in os.environ.items() if k not in ("TEST_BROKER_URL", "TEST_RESULT_BACKEND")}
    runs: dict[str, tuple[list[str], Mapping[str, str]]] = {"unit tier": (UNIT_TIER, os.environ)}
    if docker_unavailable_reason() is None:
        runs["integration tier, testcontainers"] = (["-m", "integration"], without_urls)
    if os.environ.get("TEST_BROKER_URL") and os.environ.get("TEST_RESULT_BACKEND"):
        runs["integration tier, TEST_* URLs"] = (["-m", "integration"], os.environ)
    times = {}
    for name, (options, env) in runs.items():
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *options],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
        )
        if done.returncode:
            raise RuntimeError(f"{name} failed:\n{done.stdout[-3000:]}{done.stderr[-1000:]}")
        times[name] = time.perf_counter() - started
    return times
