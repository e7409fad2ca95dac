"""Prometheus metrics: the web app's at ``GET /metrics`` of its internal port, the worker's on a port of its own.

Several processes (gunicorn's workers, a prefork pool) add their counts up through
``PROMETHEUS_MULTIPROC_DIR``, prometheus-client's multiprocess mode; without it each counts alone.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

from celery.concurrency import get_implementation
from celery.signals import task_postrun, task_prerun, task_retry, task_revoked, worker_init, worker_ready
from flask import Blueprint, Flask, Response, abort, current_app, request
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest, start_http_server
from prometheus_client.multiprocess import MultiProcessCollector

from app.settings import ConfigError

REQUESTS = Counter("http_requests_total", "HTTP requests answered", ["method", "route", "status"])
UNAVAILABLE = Counter("dependency_unavailable_total", "503s answered because a dependency was down", ["dependency"])
PUBLISH_SECONDS = Histogram("task_publish_seconds", "Time POST /task/ took to record and publish its task")
TASKS = Counter("celery_tasks_total", "Tasks that reached a final state", ["task", "state"])
RUN_SECONDS = Histogram("celery_task_run_seconds", "Time a task took to run", ["task"])
RETRIES = Counter("celery_task_retries_total", "Retries a task asked for", ["task"])

bp = Blueprint("metrics", __name__)
_started: dict[str, float] = {}  # task id -> when it started running, in this process


def init_app(app: Flask) -> None:
    app.after_request(_count_request)
    app.register_blueprint(bp)


@bp.get("/metrics")
def metrics() -> Response:
    """Every metric of this service's processes, in Prometheus's text format: on the internal port only."""
    if not internal():
        abort(404)
    return Response(generate_latest(_registry()), mimetype="text/plain; version=0.0.4")


def internal() -> bool:
    """Whether this request came in on the internal port (``internal_port``), for operators, not clients.

    The WSGI server says which of its sockets took the connection (SERVER_PORT); served
    on a Unix socket, gunicorn takes it from the Host header: serve the internal port on TCP.
    """
    return request.environ.get("SERVER_PORT") == str(current_app.config["INTERNAL_PORT"])


def _registry() -> CollectorRegistry:
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return REGISTRY
    registry = CollectorRegistry()
    MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return registry


def _count_request(response: Response) -> Response:
    route = request.url_rule.rule if request.url_rule else "unmatched"  # a bounded set of labels
    REQUESTS.labels(request.method, route, str(response.status_code)).inc()
    return response


@task_prerun.connect  # type: ignore[untyped-decorator]
def _task_started(task_id: str, **_: Any) -> None:
    _started[task_id] = time.monotonic()


@task_postrun.connect  # type: ignore[untyped-decorator]
def _task_ended(task_id: str, task: Any, state: str | None = None, **_: Any) -> None:
    if (started := _started.pop(task_id, None)) is not None:
        RUN_SECONDS.labels(task.name).observe(time.monotonic() - started)
    if state in ("SUCCESS", "FAILURE"):  # RETRY comes again; IGNORED is a cancel (counted when revoked)
        TASKS.labels(task.name, state).inc()


@task_retry.connect  # type: ignore[untyped-decorator]
def _task_retried(sender: Any, **_: Any) -> None:
    RETRIES.labels(sender.name).inc()


@task_revoked.connect  # type: ignore[untyped-decorator]
def _task_revoked(sender: Any, **_: Any) -> None:
    TASKS.labels(sender.name, "REVOKED").inc()


@worker_ready.connect  # type: ignore[untyped-decorator]
def _serve_worker_metrics(**_: Any) -> None:
    if port := os.environ.get("WORKER_METRICS_PORT"):
        # Loopback unless WORKER_METRICS_ADDRESS says otherwise (a container's scraper).
        start_http_server(int(port), os.environ.get("WORKER_METRICS_ADDRESS", "127.0.0.1"), registry=_registry())


@worker_init.connect  # type: ignore[untyped-decorator]
def _refuse_uncounted_worker_metrics(sender: Any, **_: Any) -> None:
    """Exit with one line (status 2): a prefork worker's tasks, counted in its pool processes, would read zero."""
    if not os.environ.get("WORKER_METRICS_PORT") or os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return
    if issubclass(get_implementation(sender.pool_cls), get_implementation("prefork")):
        reason = (
            "a prefork worker also needs PROMETHEUS_MULTIPROC_DIR (a folder its processes share, "
            "emptied before it starts): without it the port serves no task's counts"
        )
        print(f"error: {ConfigError('the environment', 'WORKER_METRICS_PORT', reason)}", file=sys.stderr)
        raise SystemExit(2)
