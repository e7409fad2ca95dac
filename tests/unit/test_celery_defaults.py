"""The Celery settings the factory starts from, chosen by the URLs in the file (app/settings/celery_defaults.py).

The same through create_app(): test_celery_app.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from app.settings.celery_defaults import BROKER_DEFAULTS, CELERY_DEFAULTS, celery_settings


@pytest.mark.parametrize(
    ("file_settings", "kind"),
    [
        ({"broker_url": "redis://127.0.0.1:1/0;amqp://127.0.0.1:2//"}, "redis"),
        ({"broker_url": "amqp://127.0.0.1:1//;redis://127.0.0.1:2/0"}, "amqp"),
        ({"broker_url": " redis://127.0.0.1:1/0 ; amqp://127.0.0.1:2//"}, "redis"),
        ({"broker_url": "redis+socket:///run/redis/redis.sock"}, "redis"),
        ({"broker_url": "AMQPS://127.0.0.1:1//"}, "amqp"),
        ({"broker_url": "sqs://"}, None),
        ({"broker_url": None}, None),
        ({}, None),
    ],
    ids=[
        "failover-redis-first",
        "failover-amqp-first",
        "failover-spaced",
        "redis-unix-socket",
        "upper-case",
        "sqs",
        "null",
        "none",
    ],
)
def test_the_first_broker_url_chooses_the_brokers_defaults(file_settings: dict[str, Any], kind: str | None) -> None:
    """The first URL of a failover list decides; `redis+socket://` is Redis; no known broker: the common defaults."""
    expected = {**CELERY_DEFAULTS, **BROKER_DEFAULTS.get(kind or "", {}), **file_settings}
    assert celery_settings(file_settings) == expected


def test_the_files_connect_args_reach_a_database_without_defaults_of_its_own() -> None:
    """SQLite gets no connect timeout from the factory; the file's connect_args still reach the engine."""
    engine_options = {"connect_args": {"timeout": 5}}
    settings = celery_settings({"result_backend": "db+sqlite:///results.db", "database_engine_options": engine_options})
    assert settings["database_engine_options"] == {
        "pool_pre_ping": True,
        "pool_recycle": 3600,
        "connect_args": {"timeout": 5},
    }
