"""Who is calling: a bearer token per client, on every request but the public probes; a task is its client's.

The config keeps each client's name and the SHA-256 of its token, never the token
(``python cli.py new-token NAME`` makes both). A request without a known token answers
401 with ``WWW-Authenticate: Bearer``. A few lines of our own rather than Flask-HTTPAuth:
one ``before_request`` hook covers every route, those of tasks exposed later included,
where the library's decorator would have to be put on each view. The client's name
follows the request's tasks (request_id.py) and is on their log lines (app/logs.py).

A task belongs to the client that started it: its owner is stored beside its id record,
as a record of its own (celery_app.FlaskTask), so on every result backend. Another
client's task answers 404 as an id never submitted would (routes.py).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets

from celery.backends.base import Backend
from flask import Flask, request
from werkzeug.datastructures import WWWAuthenticate
from werkzeug.exceptions import Unauthorized

from app.observability.logs import CLIENT_ENVIRON_KEY, current_client

# Endpoints anyone may call: the probes, the API's description, the page and its script.
# /metrics and the detailed /readyz answer only on the internal port (internal.py).
PUBLIC = frozenset({"health.healthz", "health.readyz", "metrics.metrics", "contract.openapi", "tasks.index", "static"})


def init_app(app: Flask) -> None:
    """Require a token on `app`'s requests, unless the config says ``auth: false``."""
    if (tokens := app.config["AUTH_TOKENS"]) is not None:
        # Found by the first half of the presented token's digest, then the whole compared in constant time.
        clients = {digest[:16]: (name, digest) for name, digest in tokens.items()}
        app.before_request(functools.partial(_authenticate, clients))


def new_token(client: str) -> tuple[str, str]:
    """A new random token for ``client``, and the line of ``auth.tokens`` that lets it in."""
    token = secrets.token_urlsafe(32)
    return token, f'{client}: "sha256:{hashlib.sha256(token.encode()).hexdigest()}"'


def who() -> str:
    """The client's name, else (without authentication) its address: whom the limits count."""
    return current_client() or request.remote_addr or "-"


def owner_record(task_id: str) -> str:
    """The id of the record that names the client a task belongs to (no task has such an id)."""
    return f"{task_id}.owner"


def owned_by(backend: Backend, task_id: str, client: str) -> bool:
    """Whether ``client`` started the task (a task started without a client belongs to none)."""
    return bool(backend.get_task_meta(owner_record(task_id))["result"] == client)


def _authenticate(clients: dict[bytes, tuple[str, bytes]]) -> None:
    if request.endpoint in PUBLIC:
        return
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    presented = hashlib.sha256(token.strip().encode()).digest()
    client, digest = clients.get(presented[:16], ("", b""))
    if not hmac.compare_digest(presented, digest) or scheme.lower() != "bearer":
        message = "Send a valid token: Authorization: Bearer <token>."
        raise Unauthorized(message, www_authenticate=WWWAuthenticate("bearer"))
    request.environ[CLIENT_ENVIRON_KEY] = client
