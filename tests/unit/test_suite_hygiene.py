"""The suite's own hygiene (conftest.py, tests/integration/services.py): no Docker, no surprises."""

from __future__ import annotations

import gc
import warnings
from pathlib import Path

import docker
import pytest
from freezegun import freeze_time
from testcontainers.core.config import testcontainers_config

from tests.integration import services


def test_freezing_time_never_makes_testcontainers_look_for_docker(monkeypatch: pytest.MonkeyPatch) -> None:
    """freezegun reads every attribute of the modules it scans; testcontainers' lazy ones call Docker."""
    calls: list[object] = []
    monkeypatch.setattr(docker, "from_env", lambda *args, **kwargs: calls.append(args))
    monkeypatch.setattr(testcontainers_config, "_ryuk_docker_socket", "")  # unresolved, as in a new process
    monkeypatch.delenv("TESTCONTAINERS_DOCKER_SOCKET_OVERRIDE", raising=False)
    with freeze_time("2026-01-02"):
        pass
    assert calls == []


@pytest.mark.parametrize(
    ("docker_host", "error"),
    [
        ("unix://{tmp_path}/docker.sock", "FileNotFoundError"),
        ("tcp://127.0.0.1:{free_port}", "ConnectionRefusedError"),
    ],
    ids=["no-socket-file", "refused-tcp"],
)
def test_docker_probe_explains_and_leaves_no_socket_behind(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, docker_host: str, error: str
) -> None:
    """Without an engine the probe gives the reason, and no unclosed socket is left to warn later."""
    host = docker_host.format(tmp_path=tmp_path, free_port=services.free_port())
    monkeypatch.setenv("DOCKER_HOST", host)
    services.docker_unavailable_reason.cache_clear()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            reason = services.docker_unavailable_reason()
            gc.collect()  # a leaked socket warns when it is collected
    finally:
        services.docker_unavailable_reason.cache_clear()  # the session's own probe sees the real engine
    assert reason is not None and reason.startswith(f"no Docker engine at {host} ({error}: ")
    # Only ResourceWarnings: another thread (an embedded worker) may warn meanwhile.
    assert [str(warning.message) for warning in caught if issubclass(warning.category, ResourceWarning)] == []
