"""The entrypoints: `python cli.py`, `celery -A celery_worker.celery worker` and gunicorn."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil
import pytest
import yaml
from flask import Flask

import cli
from app import create_app
from tests import ROOT
from tests.embedded import write_embedded_config
from tests.integration.services import free_port
from tests.unit.conftest import IN_MEMORY_CONFIG, WriteConfig


class NoServer:
    """Stands in for the internal port's server: binds nothing, serves nothing."""

    def serve_forever(self) -> None:
        """Return at once."""

    def shutdown(self) -> None:
        """Nothing to stop."""


@pytest.fixture
def runs(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Record Flask.run's arguments instead of serving (and keep pytest's signal handlers); no internal port either."""
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(Flask, "run", lambda self, **kwargs: calls.append(kwargs))
    monkeypatch.setattr(cli, "make_server", lambda *args, **kwargs: NoServer())
    monkeypatch.setattr(cli.signal, "signal", lambda *args: None)
    return calls


def test_defaults_are_loopback_configured_port_no_debugger(
    write_config: WriteConfig, runs: list[dict[str, Any]]
) -> None:
    """Without options: 127.0.0.1, the file's port, debugger and reloader off."""
    write_config({**IN_MEMORY_CONFIG, "port": 8123})
    cli.main([])
    assert runs == [{"host": "127.0.0.1", "port": 8123, "debug": False}]


def test_options_override_host_port_debug_and_config(
    write_config: WriteConfig, runs: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """--config, --host, --port and --debug reach the server; --config is inherited by children."""
    path = write_config()
    monkeypatch.delenv("FLASK_CONFIG")
    cli.main(["--config", str(path), "--host", "0.0.0.0", "--port", "9000", "--debug"])
    assert runs == [{"host": "0.0.0.0", "port": 9000, "debug": True}]
    assert (cli.os.environ["FLASK_CONFIG"], cli.os.environ["FLASK_DEBUG"]) == (str(path), "1")


def test_worker_option_starts_and_stops_a_celery_worker(
    write_config: WriteConfig, runs: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """--worker runs `celery -A celery_worker.celery worker` beside the server, stopped after it."""
    write_config()
    started: list[tuple[list[str], str]] = []

    class FakeWorker:
        def __init__(self, command: list[str], env: dict[str, str]) -> None:
            started.append((command, env["PYTHONPATH"]))
            self.stopped = threading.Event()

        def terminate(self) -> None:
            self.stopped.set()

        def poll(self) -> int | None:
            return None  # still stopping when the server sends its `shutdown`

        def wait(self) -> int:
            assert self.stopped.wait(timeout=10)  # runs until the server stops it
            return 0

    monkeypatch.setattr(cli.subprocess, "Popen", FakeWorker)
    monkeypatch.delenv("PYTHONPATH", raising=False)
    cli.main(["--worker"])
    # In this process's folder, with the repository importable wherever cli.py was started.
    command = [sys.executable, "-m", "celery", "-A", "celery_worker.celery", "worker", "--loglevel=info"]
    # A node name of its own (its server's port): the `shutdown` message stops no other worker.
    command.append(f"--hostname=cli-8080@{socket.gethostname()}")
    assert started == [(command, str(ROOT))]
    assert len(runs) == 1


@pytest.mark.parametrize(
    ("content", "error"),
    [
        ("celery: {}", "key 'celery.broker_url': missing required key (or set CELERY_BROKER_URL)"),
        (
            "celery: {broker_url: 'memory://', result_backend: 'cache+memory://', worker_prefetch_multiplier: lots}",
            "key 'celery.worker_prefetch_multiplier': expected an integer, got a string",
        ),
    ],
    ids=["missing-key", "wrong-type"],
)
@pytest.mark.parametrize(
    "command",
    [
        [sys.executable, "cli.py"],
        [sys.executable, "-m", "celery", "-A", "celery_worker.celery", "worker"],
        [sys.executable, "-m", "gunicorn", "app:create_app()"],  # reads ./gunicorn.conf.py
    ],
    ids=["cli", "celery-worker", "gunicorn"],
)
def test_bad_config_exits_2_with_one_line(tmp_path: Path, command: list[str], content: str, error: str) -> None:
    """Both entrypoints stop on a bad config with status 2 and one line, no traceback."""
    path = tmp_path / "api-config.yaml"
    path.write_text(f"secret_key: x\n{content}\n")
    path.chmod(0o600)  # no permission warning: the one line is the error
    # This process's environment (coverage measures subprocesses through it), with the
    # app's own variables replaced.
    env = {**os.environ, "FLASK_CONFIG": str(path)}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stderr) == (2, f"error: config error in {path}, {error}\n")


def start_with_worker(config: Path, **popen: Any) -> subprocess.Popen[str]:
    """`cli.py --worker` on `config`."""
    command = [sys.executable, "cli.py", "--worker", "--config", str(config)]
    return subprocess.Popen(command, cwd=ROOT, stderr=subprocess.PIPE, text=True, **popen)


@pytest.fixture
def embedded_config(tmp_path: Path) -> Path:
    """config/embedded.yaml on a free port, its broker and backend in `tmp_path`."""
    return write_embedded_config(tmp_path, port=free_port(), internal_port=free_port(), sample_task_seconds=0)


def test_a_dead_worker_stops_the_server(embedded_config: Path) -> None:
    """If the --worker child dies, the server stops too (status 1, saying why): no task waits forever."""
    server = start_with_worker(embedded_config)
    try:
        wait_for_child(psutil.Process(server.pid)).kill()
        _, stderr = server.communicate(timeout=60)
        assert server.returncode == 1
        assert "error: the worker exited (status -9); stopping the server" in stderr
    finally:
        server.kill()


# The fast stop is proven by its event (the worker's "Got shutdown from remote": cli.py's
# control message, read within the embedded config's 0.1 s poll); the time it takes is the
# README's measurement, not a bound a shared 2-core machine can hold to. This bound only
# catches a stop that hangs (the filesystem broker's 2 s polls, 1 s sleeps: 5-7 s once).
IDLE_STOP_SECONDS = 20.0


@pytest.mark.parametrize("how", ["SIGTERM", "Ctrl+C"], ids=["sigterm", "ctrl-c"])
def test_an_idle_stack_stops_within_seconds(embedded_config: Path, how: str) -> None:
    """Stopping an idle `cli.py --worker` (`docker stop`, systemd, a terminal) stops its worker too, in seconds."""
    # Its own process group, as in a terminal, where Ctrl+C signals every process of the group.
    server = start_with_worker(embedded_config, start_new_session=True)
    with followed(server) as lines:
        worker = wait_for_child(psutil.Process(server.pid))
        wait_for_line(lines, " ready.")  # the worker consumes: a control message reaches it
        started = time.monotonic()
        if how == "Ctrl+C":
            os.killpg(server.pid, signal.SIGINT)
        else:
            server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
        elapsed = time.monotonic() - started
        assert server.returncode == 0
        assert not worker.is_running() or worker.status() == psutil.STATUS_ZOMBIE
        assert elapsed < IDLE_STOP_SECONDS, f"stopped in {elapsed:.1f} s"
        # The shortcut was taken: the worker stopped on cli.py's message, not at its next poll.
        assert any("Got shutdown from remote" in line for line in lines)


@contextmanager
def followed(server: subprocess.Popen[str]) -> Iterator[list[str]]:
    """`server`'s stderr lines as they come (a thread keeps the pipe from filling); at the end, its group killed."""
    stderr = server.stderr
    assert stderr
    lines: list[str] = []

    def read() -> None:
        for line in stderr:
            lines.append(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        yield lines
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGKILL)
        server.wait()
        reader.join(timeout=10)  # at end of file: every process of the group is gone
        stderr.close()


def wait_for_line(lines: list[str], text: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not any(text in line for line in lines):
        assert time.monotonic() < deadline, f"no line with {text!r} in:\n{''.join(lines)}"
        time.sleep(0.05)


def test_a_shutdown_its_last_worker_never_read_does_not_stop_the_next(
    embedded_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A `shutdown` left for the worker's name (its last run died first) is dropped before it starts."""
    monkeypatch.setenv("FLASK_CONFIG", str(embedded_config))
    app = create_app()
    celery_app, name = app.extensions["celery"], cli.worker_name(app.config["PORT"])
    with celery_app.connection_for_write() as connection:  # the queue its last run bound, still there
        celery_app.control.mailbox.get_queue(name)(connection.default_channel).declare()
    celery_app.control.shutdown(destination=[name])
    server = start_with_worker(embedded_config, start_new_session=True)
    with followed(server) as lines:
        wait_for_line(lines, " ready.")
        task_id = app.test_client().post("/task/").json["task_id"]
        wait_for_line(lines, f"[{task_id}] succeeded")  # the worker has read its control queue since
        assert server.poll() is None, "".join(lines)
        assert not any("Got shutdown from remote" in line for line in lines)


def wait_for_child(process: psutil.Process, timeout: float = 30) -> psutil.Process:
    deadline = time.monotonic() + timeout
    while not (children := process.children()):
        assert time.monotonic() < deadline, "cli.py --worker started no worker"
        time.sleep(0.1)
    return children[0]


def test_the_internal_port_serves_the_app_on_loopback_with_what_only_operators_see(write_config: WriteConfig) -> None:
    """serve_internal(): 127.0.0.1 on internal_port, where /readyz names each dependency and /metrics answers."""
    write_config({**IN_MEMORY_CONFIG, "internal_port": free_port()})
    app = create_app()
    server = cli.serve_internal(app)
    try:
        base = f"http://127.0.0.1:{app.config['INTERNAL_PORT']}"
        with urllib.request.urlopen(f"{base}/readyz", timeout=10) as response:
            assert json.loads(response.read()) == {"status": "ok", "checks": {"broker": "ok", "result_backend": "ok"}}
        with urllib.request.urlopen(f"{base}/metrics", timeout=10) as response:
            assert response.status == 200
    finally:
        server.shutdown()
        server.server_close()
    assert server.server_address[0] == "127.0.0.1"


def test_an_internal_port_in_use_stops_cli_with_one_line_before_any_worker_starts(embedded_config: Path) -> None:
    """Another process on internal_port: one line naming it and --internal-port, status 2, no worker left behind."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        command = [sys.executable, "cli.py", "--worker", "--config", str(embedded_config), "--internal-port", str(port)]
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].startswith(f"error: cannot listen on 127.0.0.1:{port} (internal_port")
    assert "Traceback" not in done.stderr and "celery@" not in done.stderr and "ready." not in done.stderr


def test_new_token_prints_a_token_and_the_line_that_lets_it_in(capsys: pytest.CaptureFixture[str]) -> None:
    """`cli.py new-token NAME`: a random token, and its SHA-256 as auth.tokens takes it (not the token)."""
    cli.main(["new-token", "billing"])
    token_line, _, *config_lines = capsys.readouterr().out.splitlines()
    token = token_line.rsplit(" ", 1)[1]
    digest = f"sha256:{hashlib.sha256(token.encode()).hexdigest()}"
    assert yaml.safe_load("\n".join(config_lines)) == {"auth": {"tokens": {"billing": digest}}}  # pasted as printed
    assert len(token) >= 43 and token not in "\n".join(config_lines)


def test_new_token_refuses_a_name_the_config_would_refuse(capsys: pytest.CaptureFixture[str]) -> None:
    """A client's name that could not go in auth.tokens: one line, status 2."""
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["new-token", "two words"])
    assert (exit_info.value.code, capsys.readouterr().err) == (
        2,
        "error: a client's name is 1 to 64 letters, digits, '.', '_' or '-'\n",
    )


def test_the_help_names_the_token_command(capsys: pytest.CaptureFixture[str]) -> None:
    """`python cli.py --help` shows the one command it would not list otherwise: new-token."""
    with pytest.raises(SystemExit):
        cli.parse_args(["--help"])
    assert "python cli.py new-token CLIENT" in capsys.readouterr().out
