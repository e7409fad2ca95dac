"""Tasks through a real broker, result backend and worker: late binding, app context."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis
from celery.worker import WorkController
from flask import Flask
from freezegun import freeze_time
from kombu import Connection

from app.tasks import sample_task
from tests.integration.conftest import RUN, WriteConfig, cli_worker, create_app_from
from tests.integration.services import Services
from tests.tasks import RUNS, context_probe, counted_task, relay_task, unserializable_task

pytestmark = pytest.mark.integration


def test_task_runs_in_its_apps_context(app: Flask, embedded_worker: WorkController) -> None:
    """The worker runs the task inside the app context: config, current_app, g, teardown."""
    result = app.extensions["celery"].tasks[context_probe.name].delay()
    seen = result.get(timeout=20)
    assert seen == {
        "has_app_context": True,
        "config_file": app.config["CONFIG_FILE"],
        "marker": "main",
        "task_id": result.id,
        "request_id": None,
    }
    assert result.id in app.extensions["torn_down"]


def test_app_sends_to_and_reads_from_the_configured_services(
    app: Flask, embedded_worker: WorkController, service_urls: Services
) -> None:
    """The broker and backend are those of the file written at test time, not defaults."""
    celery_app = app.extensions["celery"]
    assert Connection(celery_app.conf.broker_url).as_uri() == Connection(service_urls.broker_url).as_uri()
    # kombu's AMQP transport connects to "localhost" as 127.0.0.1, and its URI says so.
    broker = Connection(service_urls.broker_url)
    expected = broker.clone(hostname="127.0.0.1") if broker.hostname == "localhost" else broker
    assert embedded_worker.consumer.connection.as_uri() == expected.as_uri()
    result = celery_app.tasks[sample_task.name].delay()
    assert isinstance(result.get(timeout=20), datetime)
    with redis.Redis.from_url(service_urls.result_backend) as backend:
        assert backend.exists(celery_app.backend.get_key_for_task(result.id)) == 1


def test_second_app_stays_isolated(
    app: Flask, embedded_worker: WorkController, write_config: WriteConfig, tmp_path: Path
) -> None:
    """Another config in the same process: its own backend, queue, worker and app context."""
    main_celery = app.extensions["celery"]
    # The same Redis, keys of its own: a backend the main app cannot read.
    keys = {"global_keyprefix": f"{RUN}-second:"}
    path = write_config("second", celery={"result_backend_transport_options": keys})
    second = create_app_from(path, MARKER="second")
    second_celery = second.extensions["celery"]
    # Its worker is another process: Celery's embedded workers share one kombu event loop
    # per process, so a second one in this process would never start.
    with cli_worker(path, tmp_path / "worker.log", "--include=tests.tasks"):
        result = second_celery.tasks[context_probe.name].delay()
        seen = result.get(timeout=60)
    assert (seen["config_file"], seen["task_id"]) == (str(path), result.id)
    assert second_celery.AsyncResult(result.id).state == "SUCCESS"
    assert not main_celery.AsyncResult(result.id).exists()
    assert main_celery.tasks[context_probe.name].delay().get(timeout=20)["marker"] == "main"


def test_unserializable_result_fails_as_in_production(app: Flask, embedded_worker: WorkController) -> None:
    """A result JSON cannot encode ends as FAILURE, which eager mode would never show."""
    result = app.extensions["celery"].tasks[unserializable_task.name].delay()
    with pytest.raises(Exception, match="not JSON serializable"):
        result.get(timeout=20)
    assert result.state == "FAILURE"


def test_frozen_time_reaches_the_worker_without_hanging(app: Flask, embedded_worker: WorkController) -> None:
    """Under freezegun the worker's task sees the frozen time, and waiting still times out."""
    with freeze_time("2026-01-02 03:04:05"):
        result = app.extensions["celery"].tasks[sample_task.name].delay()
        assert result.get(timeout=20) == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_a_message_for_a_finished_task_is_dropped(app: Flask, embedded_worker: WorkController) -> None:
    """A redelivered or duplicated message for a finished id runs nothing and leaves the result as it was."""
    celery_app = app.extensions["celery"]
    key = celery_app.backend.get_key_for_task
    first = celery_app.tasks[counted_task.name].delay("duplicate")
    assert first.get(timeout=20) == 1
    stored = celery_app.backend.get(key(first.id))
    celery_app.tasks[counted_task.name].apply_async(("duplicate",), task_id=first.id)
    # The solo worker takes messages in order: once this one is done, the duplicate was handled.
    celery_app.tasks[context_probe.name].delay().get(timeout=20)
    assert RUNS["duplicate"] == 1
    assert celery_app.backend.get(key(first.id)) == stored


def test_a_task_started_by_a_task_inherits_the_request_id(app: Flask, embedded_worker: WorkController) -> None:
    """The id travels from message to message: a task started by a task sees the original request's."""
    celery_app = app.extensions["celery"]
    child_id = celery_app.tasks[relay_task.name].apply_async(headers={"request_id": "abc-123"}).get(timeout=20)
    assert celery_app.AsyncResult(child_id).get(timeout=20)["request_id"] == "abc-123"
