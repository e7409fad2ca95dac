"""Run the web app on Flask's development server (for production: gunicorn, the template's docs/operations.md).

python cli.py [--config FILE] [--host 127.0.0.1] [--port PORT] [--internal-port PORT] [--debug] [--worker]
python cli.py new-token CLIENT    (a new token, and its line for the config's auth.tokens)

The internal port (`internal_port`: /metrics, /readyz with reasons) listens on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from flask import Flask
from kombu.exceptions import OperationalError
from werkzeug.serving import BaseWSGIServer, make_server

from app import create_app_or_exit
from app.settings.security import CLIENT_NAME
from app.web.auth import new_token


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    epilog = "python cli.py new-token CLIENT prints a new token, and its line for the config's auth.tokens."
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=epilog)
    parser.add_argument("--config", help="config file (default: $FLASK_CONFIG, else ./secrets/api-config.yaml)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    parser.add_argument("--port", type=int, help="port to bind (default: the config file's `port`)")
    parser.add_argument("--internal-port", type=int, help="internal port (default: the config file's `internal_port`)")
    parser.add_argument("--debug", action="store_true", help="reloader and debugger: never on a shared network")
    parser.add_argument("--worker", action="store_true", help="also run a Celery worker (child process, same config)")
    return parser.parse_args(argv)


def worker_name(port: int) -> str:
    """The node name of the worker of the server on `port`, which its `shutdown` message names.

    Two servers running at once have different ports, so stopping one stops no other
    worker; the name stays the same across restarts, as it must: the filesystem broker
    keeps every name's binding, and each control message leaves a file for every binding.
    """
    return f"cli-{port}@{socket.gethostname()}"


def start_worker(name: str) -> subprocess.Popen[bytes]:
    """The same worker as `celery -A celery_worker.celery worker`, with its config file."""
    command = [sys.executable, "-m", "celery", "-A", "celery_worker.celery", "worker", "--loglevel=info"]
    command.append(f"--hostname={name}")
    # In this process's folder, so that a relative --config means the same to both processes
    # (the folders it names are taken from its own); `celery_worker` imports from this file's folder.
    path = [str(Path(__file__).resolve().parent), *filter(None, [os.environ.get("PYTHONPATH")])]
    return subprocess.Popen(command, env={**os.environ, "PYTHONPATH": os.pathsep.join(path)})


def print_new_token(client: str) -> None:
    """A new token on stdout, for the client alone; the line for the config, which holds only its hash."""
    if not CLIENT_NAME.fullmatch(client):
        print("error: a client's name is 1 to 64 letters, digits, '.', '_' or '-'", file=sys.stderr)
        raise SystemExit(2)
    token, line = new_token(client)
    print(f"token for {client} (give it to the client; it is shown once): {token}")
    # As it sits in the config: the first client's line replaces `tokens: {}`, the next go beside it.
    print(f"in the config (auth.tokens, beside the other clients' lines):\nauth:\n  tokens:\n    {line}")


def serve_internal(app: Flask) -> BaseWSGIServer:
    """The same app on the internal port, loopback only: what only operators should see answers there."""
    port = app.config["INTERNAL_PORT"]
    try:
        server = make_server("127.0.0.1", port, app, threaded=True)
    except (OSError, SystemExit):  # werkzeug prints that a port is in use, then exits 1
        print(f"error: cannot listen on 127.0.0.1:{port} (internal_port, or --internal-port)", file=sys.stderr)
        raise SystemExit(2) from None
    threading.Thread(target=server.serve_forever, name="internal port", daemon=True).start()
    return server


def main(argv: Sequence[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["new-token"] and len(argv) == 2:
        print_new_token(argv[1])
        return
    args = parse_args(argv)
    # Set before create_app() and inherited by the worker child.
    if args.config:
        os.environ["FLASK_CONFIG"] = args.config
    if args.debug:
        os.environ["FLASK_DEBUG"] = "1"  # also lets the published example secret key pass
    app = create_app_or_exit()
    # With --debug the reloader re-runs this file in a child (WERKZEUG_RUN_MAIN set);
    # only the outer process starts the worker, so there is exactly one.
    port = args.port or app.config["PORT"]
    app.config["INTERNAL_PORT"] = args.internal_port or app.config["INTERNAL_PORT"]
    # In the process that serves, not in the reloader's; before the worker, which a port in use would leave behind.
    internal = serve_internal(app) if not args.debug or os.environ.get("WERKZEUG_RUN_MAIN") else None
    name = worker_name(port)
    worker = None
    if args.worker and not os.environ.get("WERKZEUG_RUN_MAIN"):
        discard_stale_control_messages(app, name)
        worker = start_worker(name)
    exit_status = [0]  # 1 once the worker has died
    # SIGTERM (docker stop, systemd) and SIGINT (Ctrl+C) must run the `finally` that stops
    # the worker; SIGINT even when started in the background by a script, which ignores it.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(exit_status[0]))
    signal.signal(signal.SIGINT, signal.default_int_handler)
    stopping = threading.Event()
    if worker:
        threading.Thread(target=_stop_if_worker_dies, args=(worker, stopping, exit_status), daemon=True).start()
    try:
        app.run(host=args.host, port=port, debug=args.debug)
    finally:
        stopping.set()
        if internal:
            internal.shutdown()
        if worker:
            stop_worker(app, worker, name)


def stop_worker(app: Flask, worker: subprocess.Popen[bytes], name: str) -> None:
    """Warm shutdown: a running task finishes first; an idle worker exits in under a second.

    SIGTERM alone would do, but a worker on a transport without an event loop (the
    filesystem broker of config/embedded.yaml) looks at it only between two 2 s polls of
    the broker: 2 to 4 s. A `shutdown` control message ends the poll it arrives in. The
    signal stays: it stops the worker if the broker can't take the message.
    """
    worker.terminate()
    if worker.poll() is None:  # a message nobody reads would stop the next worker of this name
        with contextlib.suppress(OperationalError, OSError):  # the broker is down: the signal will do
            app.extensions["celery"].control.shutdown(destination=[name])
    worker.wait()


def discard_stale_control_messages(app: Flask, name: str) -> None:
    """Drop what is waiting for worker `name`: a `shutdown` sent as its last run ended would stop this one.

    Only brokers that keep a stopped node's control queue (filesystem, Redis) can hold
    one; RabbitMQ deletes it with its worker, so there is nothing to purge.
    """
    celery_app = app.extensions["celery"]
    with (
        contextlib.suppress(OperationalError, OSError),
        celery_app.connection_for_write() as connection,
        contextlib.suppress(*connection.channel_errors),  # no such queue
    ):
        celery_app.control.mailbox.get_queue(name)(connection.default_channel).purge()


def _stop_if_worker_dies(worker: subprocess.Popen[bytes], stopping: threading.Event, exit_status: list[int]) -> None:
    """Without its worker the server would queue tasks that never run: stop it too, saying why."""
    status = worker.wait()
    if not stopping.is_set():
        print(f"error: the worker exited (status {status}); stopping the server", file=sys.stderr)
        exit_status[0] = 1
        os.kill(os.getpid(), signal.SIGTERM)


if __name__ == "__main__":
    main()
