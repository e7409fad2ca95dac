"""Who may start, see and cancel tasks, with a real broker, result backend and worker (app/web/auth.py, limits)."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest
import redis
from celery.result import ResultSet
from celery.worker import WorkController
from flask import Flask
from werkzeug.serving import make_server

from app.web.auth import new_token
from tests.integration.conftest import RUN, WriteConfig, create_app_from
from tests.integration.services import Services, free_port
from tests.logs import capturing_task_lines

pytestmark = pytest.mark.integration

# Two clients of the run's own (their names go into the limits' Redis keys, removed at the end).
FLOOD, CALM = f"{RUN}-flood", f"{RUN}-calm"
CONNECTIONS = 64
POSTS_EACH = 8
RATE = "40/second"


@dataclass(frozen=True)
class Secured:
    """An app with authentication on, served over HTTP on loopback, and each client's token."""

    app: Flask
    url: str
    tokens: dict[str, str]


@pytest.fixture(scope="module")
def secured(write_config: WriteConfig, service_urls: Services, embedded_worker: WorkController) -> Iterator[Secured]:
    """The session worker's queue, tokens for FLOOD and CALM, limits counted in the result backend's Redis."""
    tokens, lines = {}, {}
    for name in (FLOOD, CALM):
        tokens[name], line = new_token(name)
        lines[name] = line.split(": ", 1)[1].strip('"')
    path = write_config(
        "main",  # the session worker's queue: it runs these tasks
        auth={"tokens": lines},
        limits={"start_rate": RATE, "unfinished_tasks": 100_000, "storage_url": service_urls.result_backend},
        # One result backend for every request thread: the threads' own would leave sockets to the collector.
        celery={"result_backend_thread_safe": True},
    )
    app = create_app_from(path)
    server = make_server("127.0.0.1", free_port(), app, threaded=True)
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    try:
        yield Secured(app, f"http://127.0.0.1:{server.server_port}", tokens)
    finally:
        server.shutdown()
        server.server_close()
        with redis.Redis.from_url(service_urls.result_backend) as limits_redis:
            for key in limits_redis.scan_iter(match=f"*{RUN}*"):
                limits_redis.delete(key)
        app.extensions["started_tasks"]._client.close()


def call(secured: Secured, method: str, path: str, client: str | None) -> tuple[int, dict[str, str], dict]:
    """One HTTP request on a connection of its own: status, headers, JSON body."""
    headers = {"Authorization": f"Bearer {secured.tokens[client]}"} if client else {}
    request = urllib.request.Request(f"{secured.url}{path}", method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, dict(error.headers), json.loads(error.read())


def test_another_clients_task_is_404_and_the_worker_logs_its_client(
    secured: Secured, caplog: pytest.LogCaptureFixture
) -> None:
    """Over HTTP, through the worker: CALM's task is 404 to FLOOD (GET and DELETE), its lines name CALM."""
    assert call(secured, "POST", "/task/", None)[0] == 401
    with capturing_task_lines(caplog):
        status, _, body = call(secured, "POST", "/task/", CALM)
        assert status == 202
        secured.app.extensions["celery"].AsyncResult(body["task_id"]).get(timeout=30)
    for method in ("GET", "DELETE"):
        answer = call(secured, method, f"/task/{body['task_id']}", FLOOD)
        assert answer[0] == 404 and "was submitted" in answer[2]["error"]["message"]
    assert call(secured, "GET", f"/task/{body['task_id']}", CALM)[2]["state"] == "SUCCESS"
    ran = [record for record in caplog.records if record.getMessage().startswith("sleeping for")]
    assert ran and {record.client for record in ran} == {CALM}  # type: ignore[attr-defined]
    assert not [token for token in secured.tokens.values() if token in caplog.text]


def test_a_client_over_its_rate_gets_429s_while_another_is_served_and_nothing_accepted_is_lost(
    secured: Secured, record_property: pytest.RecordProperty
) -> None:
    """64 connections of FLOOD at once, past its rate: 429s with Retry-After; CALM's POSTs all 202; every 202 runs."""
    start = threading.Barrier(CONNECTIONS + 1)

    def flood(_: int) -> list[tuple[int, dict[str, str], dict]]:
        start.wait()
        return [call(secured, "POST", "/task/", FLOOD) for _ in range(POSTS_EACH)]

    started = time.monotonic()
    with ThreadPoolExecutor(CONNECTIONS) as pool:
        flooding = pool.map(flood, range(CONNECTIONS))
        start.wait()
        calm = [call(secured, "POST", "/task/", CALM) for _ in range(10)]
        flooded = [answer for answers in flooding for answer in answers]
    seconds = time.monotonic() - started
    statuses = Counter(status for status, _, _ in flooded)
    assert set(statuses) == {202, 429} and [status for status, _, _ in calm] == [202] * 10
    assert all("Retry-After" in headers for status, headers, _ in flooded if status == 429)
    accepted = [body["task_id"] for status, _, body in [*flooded, *calm] if status == 202]
    celery_app = secured.app.extensions["celery"]
    ResultSet([celery_app.AsyncResult(task_id) for task_id in accepted]).join(timeout=120, propagate=True)
    assert {celery_app.AsyncResult(task_id).state for task_id in accepted} == {"SUCCESS"}
    record_property("flood", f"{dict(statuses)} in {seconds:.2f} s; calm 10 x 202; {len(accepted)} tasks all SUCCESS")
    print(f"flood: {dict(statuses)} in {seconds:.2f} s; calm: 10 x 202; {len(accepted)} accepted, all SUCCESS")


def test_at_its_cap_a_client_gets_429_recorded_nowhere_until_one_of_its_tasks_ends(
    write_config: WriteConfig, service_urls: Services
) -> None:
    """Counted beside the id records in the result backend's Redis: the third unfinished start is 429, no record kept.

    Its queue has no worker: the two accepted stay queued until one is cancelled, which makes room.
    """
    capped = f"{RUN}-capped"
    token, line = new_token(capped)
    path = write_config(
        "capped",
        auth={"tokens": {capped: line.split(": ", 1)[1].strip('"')}},
        limits={"start_rate": RATE, "unfinished_tasks": 2, "storage_url": service_urls.result_backend},
    )
    app = create_app_from(path)
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    with redis.Redis.from_url(service_urls.result_backend) as backend_redis:
        try:
            first, _ = (client.post("/task/").json["task_id"] for _ in range(2))
            records = set(backend_redis.scan_iter(match=f"{RUN}:celery-task-meta-*"))
            assert client.post("/task/").status_code == 429
            assert set(backend_redis.scan_iter(match=f"{RUN}:celery-task-meta-*")) == records
            assert client.delete(f"/task/{first}").status_code == 202
            assert client.post("/task/").status_code == 202
        finally:
            backend_redis.delete(f"started-tasks:{capped}")
            app.extensions["started_tasks"]._client.close()
