"""How much a client may start: a rate (Flask-Limiter), and a cap on its tasks queued or running at once.

Both count per client (per address without authentication), over every exposed task, in
``limits.storage_url``: the result backend's Redis where it is one, so that every process
of the service counts alike; else in the memory of each process (the embedded mode's one).
Past either, 429 (the rate's with ``Retry-After``; the cap: unfinished_tasks.py). The
limits' Redis out of reach answers 503 within its socket timeouts, as the result
backend's does; a Redis error elsewhere is not theirs to name.
"""

from __future__ import annotations

import functools
import math
import time

from flask import Flask, current_app, request
from flask.typing import ResponseReturnValue
from flask_limiter import Limiter, RateLimitExceeded
from limits.errors import StorageError
from werkzeug.exceptions import TooManyRequests

from app.web import unfinished_tasks
from app.web.auth import who
from app.web.dependencies import unavailable


def init_app(app: Flask) -> None:
    """Limit how fast each client starts `app`'s tasks, and how many it may have unfinished."""
    url, rate = app.config["LIMITS"]["storage_url"], app.config["LIMITS"]["start_rate"]
    # The Redis timeouts of the factory's Celery settings: a stalled Redis fails a request in time.
    conf = app.extensions["celery"].conf
    timeouts = {name: conf[f"redis_{name}"] for name in ("socket_connect_timeout", "socket_timeout")}
    limiter = Limiter(
        key_func=who,
        app=app,
        storage_uri=url,
        storage_options={**timeouts, "wrap_exceptions": True},  # its errors as StorageError: theirs alone answer 503
        application_limits=[rate],  # fixed window (Flask-Limiter's default): one Redis call a start
        application_limits_exempt_when=lambda: not _starts_a_task(),
        headers_enabled=False,  # X-RateLimit-* would read the window back each start; Retry-After: on the 429 alone
    )
    # Named as the client knows it: by default the limits count in the result backend's Redis.
    in_backend = url == app.config["CELERY"]["result_backend"]
    name = "result backend" if in_backend else "limits storage"
    beside_id_records = in_backend and hasattr(app.extensions["celery"].backend, "record_sent")
    app.extensions["started_tasks"] = unfinished_tasks.storage(url, timeouts, beside_id_records)
    app.register_error_handler(StorageError, functools.partial(_unavailable, name))
    app.register_error_handler(RateLimitExceeded, functools.partial(_retry_after, limiter))


def _unavailable(name: str, error: StorageError) -> ResponseReturnValue:
    """The limits' Redis is out of reach: 503 as JSON."""
    return current_app.handle_http_exception(unavailable(name, type(error.storage_error).__name__))


def _retry_after(limiter: Limiter, error: RateLimitExceeded) -> ResponseReturnValue:
    """The rate's 429, with ``Retry-After``: the seconds left in its window, read now (all of it if that read fails)."""
    limit = limiter.current_limit
    try:
        seconds = math.ceil(limit.window.reset_time - time.time())  # type: ignore[union-attr]
    except StorageError:  # Redis lost after the hit: still this 429, not an error handler's 500
        seconds = limit.limit.get_expiry()  # type: ignore[union-attr]
    return current_app.handle_http_exception(TooManyRequests(error.description, retry_after=max(seconds, 1)))


def _starts_a_task() -> bool:
    """A POST to a task exposed with expose() (task_api.py), whichever it is."""
    view = current_app.view_functions.get(request.endpoint or "")
    return request.method == "POST" and hasattr(view, "parameters")
