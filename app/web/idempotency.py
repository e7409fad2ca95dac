"""``Idempotency-Key`` on ``POST /task/``: a POST repeated with the same key starts nothing new.

As in the IETF draft "The Idempotency-Key HTTP Header Field". The first request with a
key fixes the task id for it (a record kept as long as results are, in the result
backend); a repeat with the same parameters answers that id and queues nothing, with
other parameters 422, while another request with the key is being accepted 409. A
publish the broker refuses (a 503) frees the key: its id is stored as refused, so that a
message the broker took without confirming it never runs (celery_app.FlaskTask), and the retry
queues a task of its own under a new id.

Atomic on Redis result backends (SET NX GET: Redis 7.0 or later); on other key-value
backends a lock of this process stands in for it; the SQLAlchemy backend keeps no such
records (501).
"""

from __future__ import annotations

import hashlib
import json
import threading
import uuid
from collections.abc import Callable
from contextlib import nullcontext
from typing import Any

from celery import Celery
from celery.backends.base import BaseKeyValueStoreBackend
from celery.backends.redis import RedisBackend
from flask import abort
from kombu.exceptions import OperationalError

from app.observability.logs import current_client

# How long a request may take to accept a task before another with its key may try.
ACCEPTING_SECONDS = 10
_LOCAL = threading.Lock()


def parse_key(header: str) -> str:
    """The key from the header: a structured-field string (`"..."`), or the bare value clients often send."""
    key = header[1:-1].replace('\\"', '"').replace("\\\\", "\\") if header[:1] == header[-1:] == '"' else header
    if not key or len(key) > 255 or not key.isprintable() or not key.isascii():
        abort(400, description="Idempotency-Key: expected 1 to 255 printable ASCII characters.")
    return key


def submit_once(celery_app: Celery, key: str, parameters: dict[str, Any], submit: Callable[[str], str]) -> str:
    """The task id for `key`, queued by `submit(task_id)` unless a request with the key did it before."""
    backend = celery_app.backend
    if not isinstance(backend, BaseKeyValueStoreBackend):
        abort(501, description="Idempotency-Key needs a key-value result backend (Redis, memcached, file).")
    # Elsewhere than on Redis no atomic "add" (_add): one request of this process at a time instead.
    with nullcontext() if isinstance(backend, RedisBackend) else _LOCAL:
        # Each client's keys are its own (app/web/auth.py): another's same key is another key.
        client = current_client()
        digest = hashlib.sha256((key if client is None else f"{client}\n{key}").encode()).hexdigest()
        # Beside the task records, under the backend's own key prefix.
        record_name = backend.get_key_for_task(f"idempotency-key-{digest}")
        lock_name = backend.get_key_for_task(f"idempotency-lock-{digest}")
        fingerprint = hashlib.sha256(json.dumps(parameters, sort_keys=True).encode()).hexdigest()
        new = json.dumps({"task_id": str(uuid.uuid4()), "fingerprint": fingerprint})
        record = json.loads(_add(backend, record_name, new, backend.expires) or new)
        if record["fingerprint"] != fingerprint:
            abort(422, description="This Idempotency-Key was used with other parameters.")
        task_id: str = record["task_id"]
        if celery_app.AsyncResult(task_id).exists():  # accepted before: answer the same
            return task_id
        if _add(backend, lock_name, "accepting", ACCEPTING_SECONDS) is not None:
            abort(409, description="A request with this Idempotency-Key is being accepted; try again shortly.")
        try:
            return submit(task_id)
        except OperationalError:
            backend.delete(record_name)  # before the lock goes: no other request takes the refused id
            raise
        finally:
            backend.delete(lock_name)


def _add(backend: BaseKeyValueStoreBackend, name: bytes, value: str, seconds: int | None) -> bytes | str | None:
    """Store `value` under `name` for `seconds` unless something is there; answer what was there, or None."""
    if not isinstance(backend, RedisBackend):  # the caller holds _LOCAL
        existing: bytes | str | None = backend.get(name)
        if existing is None:
            backend.set(name, value)
        return existing
    # One atomic command (SET ... NX GET, Redis 7.0 and later), through the client: the
    # backend's own set() retries a refused connection 20 times.
    answer: bytes | None = backend.client.set(name, value, nx=True, ex=seconds or None, get=True)
    return answer
