"""The Celery app the factory creates and its app-context Task (app/celery_app.py)."""

from __future__ import annotations

import pytest
from celery.backends.redis import RedisBackend
from flask import Flask, g

from app import create_app
from app.results import PublisherRedisBackend, PublisherSentinelBackend
from app.tasks import sample_task
from tests.tasks import context_probe, failing_task
from tests.unit.conftest import IN_MEMORY_CONFIG, WriteConfig


def test_safe_defaults_apply_and_the_file_overrides_them(write_config: WriteConfig) -> None:
    """JSON only, late acks, confirms, limits and expiry hold unless the file says otherwise."""
    write_config({**IN_MEMORY_CONFIG, "celery": {**IN_MEMORY_CONFIG["celery"], "task_time_limit": 7}})
    conf = create_app().extensions["celery"].conf
    expected = {
        "accept_content": ["json"],
        "task_serializer": "json",
        "result_serializer": "json",
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "broker_transport_options": {"confirm_publish": True},
        "task_default_delivery_mode": "persistent",
        "task_soft_time_limit": 300,
        "task_time_limit": 7,
        "result_expires": 86400,
    }
    assert {key: conf[key] for key in expected} == expected


@pytest.mark.parametrize(
    ("scheme", "backend_class"),
    [("redis", PublisherRedisBackend), ("rediss", PublisherRedisBackend), ("sentinel", PublisherSentinelBackend)],
    ids=["redis", "rediss", "sentinel"],
)
def test_redis_result_backends_do_not_subscribe_on_send(
    write_config: WriteConfig, scheme: str, backend_class: type
) -> None:
    """A Redis result backend sends without subscribing (nothing listens on port 1: Celery's would fail)."""
    celery = {**IN_MEMORY_CONFIG["celery"], "result_backend": f"{scheme}://127.0.0.1:1/0"}
    if scheme == "rediss":
        celery["redis_backend_use_ssl"] = {"ssl_cert_reqs": "required"}
    write_config({**IN_MEMORY_CONFIG, "celery": celery})
    backend = create_app().extensions["celery"].backend
    assert type(backend) is backend_class
    assert backend.on_task_call(None, "some-task-id") == {}
    assert backend.result_consumer.subscribed_to == set()


def test_the_file_can_restore_celerys_redis_backend(write_config: WriteConfig) -> None:
    """`override_backends: {}` under `celery:` gives Celery's own Redis backend back."""
    celery = {**IN_MEMORY_CONFIG["celery"], "result_backend": "redis://127.0.0.1:1/0", "override_backends": {}}
    write_config({**IN_MEMORY_CONFIG, "celery": celery})
    assert type(create_app().extensions["celery"].backend) is RedisBackend


def test_task_runs_inside_the_app_context(app: Flask) -> None:
    """A task sees current_app's config and keeps its own request id."""
    result = app.extensions["celery"].tasks[context_probe.name].apply_async(task_id="probe-1")
    seen = result.get()
    assert seen["has_app_context"] is True
    assert seen["config_file"] == app.config["CONFIG_FILE"]
    assert seen["task_id"] == "probe-1"


def test_app_context_is_torn_down_after_each_task(app: Flask) -> None:
    """What the app sets up per context (closed by teardown_appcontext) is released per task."""
    torn_down: list[str | None] = []
    app.teardown_appcontext(lambda error: torn_down.append(g.get("probe_task_id")))
    task = app.extensions["celery"].tasks[context_probe.name]
    first, second = task.delay().id, task.delay().id
    assert torn_down == [first, second]


def test_shared_tasks_use_the_celery_app_of_the_active_context(write_config: WriteConfig) -> None:
    """Inside an app's context, `shared_task` proxies resolve to that app's own Celery app."""
    write_config()
    first, second = create_app(), create_app()
    for app in (first, second, first):
        with app.app_context():
            assert sample_task.app is app.extensions["celery"]


def test_outer_context_gets_its_celery_back_after_a_nested_one(write_config: WriteConfig) -> None:
    """A nested context of another app ends: the outer app's Celery app is current again."""
    write_config()
    outer, inner = create_app(), create_app()
    with outer.app_context():
        with inner.app_context():
            assert sample_task.app is inner.extensions["celery"]
        assert sample_task.app is outer.extensions["celery"]


def test_task_keyword_arguments_reach_the_task(app: Flask) -> None:
    """The app-context wrapper passes keyword arguments on."""
    with pytest.raises(ValueError, match=r"^by keyword$"):
        app.extensions["celery"].tasks[failing_task.name].apply(kwargs={"message": "by keyword"})


def test_other_flask_apps_are_left_alone(app: Flask) -> None:
    """A Flask app without Celery, in the same process, nests with ours either way round."""
    plain = Flask("plain")
    with plain.app_context(), app.app_context():
        assert sample_task.app is app.extensions["celery"]
    with app.app_context(), plain.app_context():
        assert sample_task.app is app.extensions["celery"]
