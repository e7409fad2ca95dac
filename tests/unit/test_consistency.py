"""Settings that contradict one another are refused at startup (app/settings/__init__.py, consistent)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from app.settings import ConfigError, load_config
from tests import ROOT
from tests.unit.conftest import IN_MEMORY_CONFIG, WriteConfig
from tests.unit.test_config import config_with

SHIPPED_CONFIGS = sorted([*(ROOT / "config").glob("*.yaml"), *(ROOT / "secrets").glob("*.example.yaml")])
# What FLASK_AUTH_TOKENS would hold for one client.
TOKENS = '{"a-client": "sha256:' + "0" * 64 + '"}'


def with_celery(celery: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """The in-memory config with top-level `changes` and these Celery settings added."""
    return config_with(celery={**IN_MEMORY_CONFIG["celery"], **celery}, **changes)


CONTRADICTIONS = [
    pytest.param(
        with_celery({}, sample_task_max_seconds=300),
        "sample_task_max_seconds",
        "expected less than celery.task_soft_time_limit (300 s), which would stop the task, got 300",
        id="max-seconds-at-the-default-soft-limit",
    ),
    pytest.param(
        with_celery({"task_time_limit": 7}),
        "sample_task_max_seconds",
        "expected less than celery.task_time_limit (7 s), which would stop the task, got 240",
        id="default-max-seconds-past-a-lower-hard-limit",
    ),
    pytest.param(
        with_celery({"task_soft_time_limit": 20}, sample_task_max_seconds=20.5),
        "sample_task_max_seconds",
        "expected less than celery.task_soft_time_limit (20 s), which would stop the task, got 20.5",
        id="max-seconds-past-a-soft-limit-set-in-the-file",
    ),
    pytest.param(
        with_celery({"task_soft_time_limit": None, "task_time_limit": 10}, sample_task_seconds=10),
        "sample_task_seconds",
        "expected less than celery.task_time_limit (10 s), which would stop the task, got 10",
        id="seconds-at-the-hard-limit-without-soft-limit",
    ),
    pytest.param(
        with_celery({"result_extended": False}),
        "celery.result_extended",
        "must stay true: GET /task/<id> reads a retrying task's attempt count from its stored result",
        id="result-extended-off",
    ),
    pytest.param(
        config_with(retry_backoff_seconds=61),
        "retry_backoff_seconds",
        "expected at most retry_backoff_max_seconds (60), which caps every wait, got 61",
        id="backoff-above-its-cap",
    ),
]


@pytest.mark.parametrize(("content", "key", "reason"), CONTRADICTIONS)
def test_contradicting_settings_name_the_file_and_the_key(
    write_config: WriteConfig, content: dict[str, Any], key: str, reason: str
) -> None:
    """Each contradiction is one ConfigError naming the file, the key to change and what it contradicts."""
    path = write_config(content)
    with pytest.raises(ConfigError) as caught:
        load_config({"FLASK_CONFIG": str(path)})
    assert str(caught.value) == f"config error in {path}, key '{key}': {reason}"


AGREEING = [
    pytest.param(with_celery({"task_soft_time_limit": 20}, sample_task_max_seconds=19.9), id="just-below-soft-limit"),
    pytest.param(
        with_celery({"task_soft_time_limit": None, "task_time_limit": None}, sample_task_max_seconds=86400),
        id="no-limits",
    ),
    pytest.param(
        with_celery({"task_soft_time_limit": 0, "task_time_limit": 0}, sample_task_max_seconds=86400),
        id="limits-of-0-are-none",
    ),
    pytest.param(config_with(retry_backoff_seconds=60), id="backoff-at-its-cap"),
]


@pytest.mark.parametrize("content", AGREEING)
def test_settings_that_agree_are_accepted(write_config: WriteConfig, content: dict[str, Any]) -> None:
    """A task the API accepts can end before any limit; a backoff may equal its cap."""
    settings = load_config({"FLASK_CONFIG": str(write_config(content))})
    assert settings["SAMPLE_TASK_MAX_SECONDS"] == content.get("sample_task_max_seconds", 240)


@pytest.mark.parametrize("path", SHIPPED_CONFIGS, ids=[path.name for path in SHIPPED_CONFIGS])
def test_every_shipped_config_loads(path: Path) -> None:
    """Each file in config/ and the example in secrets/ loads as shipped (its clients from the environment)."""
    assert load_config({"FLASK_CONFIG": str(path), "FLASK_AUTH_TOKENS": TOKENS})["CONFIG_FILE"] == str(path)


@pytest.mark.parametrize("path", SHIPPED_CONFIGS, ids=[path.name for path in SHIPPED_CONFIGS])
def test_every_shipped_config_but_the_embedded_quick_start_requires_tokens(path: Path) -> None:
    """Authentication is on in every production example: without clients it refuses to start; embedded.yaml has none."""
    if path.name == "embedded.yaml":
        assert load_config({"FLASK_CONFIG": str(path)})["AUTH_TOKENS"] is None
    else:
        with pytest.raises(ConfigError, match=r"key 'auth.tokens': expected a mapping .* got none"):
            load_config({"FLASK_CONFIG": str(path)})
