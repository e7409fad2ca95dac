"""The settings of who may call and how much (app/settings/security.py): defaults, the environment, errors."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from app.settings import ConfigError, load_config
from tests.unit.conftest import IN_MEMORY_CONFIG, WriteConfig
from tests.unit.test_config import config_with

DIGEST = "sha256:" + hashlib.sha256(b"a-token").hexdigest()


def test_tokens_are_kept_as_digests_and_the_limits_default(write_config: WriteConfig) -> None:
    """auth.tokens: each client's name and its token's SHA-256 (bytes); limits and internal_port have defaults."""
    content = config_with(auth={"tokens": {"billing": DIGEST}}, limits=None)
    settings = load_config({"FLASK_CONFIG": str(write_config(content))})
    assert settings["AUTH_TOKENS"] == {"billing": hashlib.sha256(b"a-token").digest()}
    assert settings["LIMITS"] == {"start_rate": "10/second", "unfinished_tasks": 100, "storage_url": "memory://"}
    assert settings["INTERNAL_PORT"] == 9090


@pytest.mark.parametrize("form", ['{"billing": "%s"}', "billing: '%s'"], ids=["json", "yaml"])
def test_the_environment_gives_the_clients_and_wins_over_auth_false(write_config: WriteConfig, form: str) -> None:
    """FLASK_AUTH_TOKENS holds the same mapping (JSON or YAML), and turns authentication on."""
    environ = {"FLASK_CONFIG": str(write_config()), "FLASK_AUTH_TOKENS": form % DIGEST}
    assert list(load_config(environ)["AUTH_TOKENS"]) == ["billing"]


@pytest.mark.parametrize(
    ("backend", "storage"),
    [("redis://r:6379/0", "redis://r:6379/0"), ("rediss://r/1", "rediss://r/1"), ("cache+memory://", "memory://")],
    ids=["redis", "redis-tls", "other"],
)
def test_the_limits_count_in_the_result_backends_redis_where_there_is_one(
    write_config: WriteConfig, backend: str, storage: str
) -> None:
    """Unless limits.storage_url says otherwise: every process of a Redis-backed service counts alike."""
    content = config_with(celery={**IN_MEMORY_CONFIG["celery"], "result_backend": backend}, limits=None)
    assert load_config({"FLASK_CONFIG": str(write_config(content))})["LIMITS"]["storage_url"] == storage


BAD = [
    pytest.param({"auth": None}, "auth", "missing required key: set auth.tokens", id="no-auth"),
    pytest.param({"auth": True}, "auth", "expected false, or a mapping with `tokens` alone, got True", id="auth-true"),
    pytest.param({"auth": {"tokens": {}}}, "auth.tokens", "got none (python cli.py new-token NAME", id="no-client"),
    pytest.param({"auth": {"tokens": ["a"]}}, "auth.tokens", "got a list", id="tokens-list"),
    pytest.param({"auth": {"tokens": {"a": DIGEST}, "x": 1}}, "auth", "with `tokens` alone", id="unknown-auth-key"),
    pytest.param({"auth": {"tokens": {"two words": DIGEST}}}, "auth.tokens", "got 'two words'", id="bad-name"),
    pytest.param({"auth": {"tokens": {1: DIGEST}}}, "auth.tokens", "got 1", id="name-not-text"),
    pytest.param({"auth": {"tokens": {"a": "hunter2"}}}, "auth.tokens.a", "never the token itself", id="a-token"),
    pytest.param({"auth": {"tokens": {"a": 5}}}, "auth.tokens.a", "expected sha256:", id="digest-number"),
    pytest.param(
        {"limits": {"rate": 1}},
        "limits",
        "expected a mapping with keys among start_rate, unfinished_tasks, storage_url",
        id="unknown-limit",
    ),
    pytest.param({"limits": "10/second"}, "limits", "expected a mapping", id="limits-text"),
    pytest.param({"limits": {"start_rate": "lots"}}, "limits.start_rate", "got 'lots'", id="bad-rate"),
    pytest.param({"limits": {"start_rate": 10}}, "limits.start_rate", "got 10", id="rate-number"),
    pytest.param({"limits": {"unfinished_tasks": 0}}, "limits.unfinished_tasks", "got 0", id="no-task"),
    pytest.param({"limits": {"unfinished_tasks": True}}, "limits.unfinished_tasks", "got True", id="cap-boolean"),
    pytest.param({"limits": {"storage_url": 5}}, "limits.storage_url", "got 5", id="storage-number"),
    pytest.param(
        {"limits": {"storage_url": "memcached://127.0.0.1:11211"}}, "limits.storage_url", "memcached", id="storage-kind"
    ),
    pytest.param({"internal_port": 8080}, "internal_port", "other than `port`, got 8080", id="internal-is-public"),
    pytest.param({"port": 9000, "internal_port": 9000}, "internal_port", "got 9000", id="internal-is-set-port"),
    pytest.param({"internal_port": 0}, "internal_port", "got 0", id="internal-zero"),
    pytest.param({"internal_port": 65536}, "internal_port", "got 65536", id="internal-too-high"),
    pytest.param({"internal_port": "9090"}, "internal_port", "got '9090'", id="internal-text"),
]


@pytest.mark.parametrize(("changes", "key", "reason"), BAD)
def test_a_bad_value_names_its_key(write_config: WriteConfig, changes: dict[str, Any], key: str, reason: str) -> None:
    """Each mistake stops the start with the file and the key named."""
    path = write_config(config_with(**changes))
    with pytest.raises(ConfigError) as error:
        load_config({"FLASK_CONFIG": str(path)})
    assert (error.value.source, error.value.key, reason in error.value.reason) == (str(path), key, True), error.value


@pytest.mark.parametrize("port", [1, 65535], ids=["lowest", "highest"])
def test_the_internal_port_takes_any_tcp_port_but_the_public_one(write_config: WriteConfig, port: int) -> None:
    """1 and 65535 are TCP ports as good as 9090."""
    settings = load_config({"FLASK_CONFIG": str(write_config(config_with(internal_port=port)))})
    assert settings["INTERNAL_PORT"] == port


@pytest.mark.parametrize(
    ("changes", "key", "reason"),
    [
        (
            {"auth": None},
            "auth",
            "missing required key: set auth.tokens (or FLASK_AUTH_TOKENS), or auth: false",
        ),
        (
            {"auth": {"tokens": {"billing": "a-token"}}},
            "auth.tokens.billing",
            "expected sha256:<64 hex digits> (python cli.py new-token NAME), never the token itself",
        ),
    ],
    ids=["no-auth", "a-token"],
)
def test_a_missing_or_misplaced_token_says_how_to_set_one(
    write_config: WriteConfig, changes: dict[str, Any], key: str, reason: str
) -> None:
    """The whole reason: where the clients go (file or environment), the form, the command that makes a token."""
    path = write_config(config_with(**changes))
    with pytest.raises(ConfigError) as error:
        load_config({"FLASK_CONFIG": str(path)})
    assert (error.value.key, error.value.reason) == (key, reason)


@pytest.mark.parametrize(
    ("auth", "environ", "key", "reason"),
    [
        ("a-token", {}, "auth", "expected false, or a mapping with `tokens` alone, got a string"),
        (
            {"clients": 1},
            {"FLASK_AUTH_TOKENS": "a-token"},
            "auth",
            "expected false, or a mapping with `tokens` alone, got keys ['clients', 'tokens']",
        ),
        (
            False,
            {"FLASK_AUTH_TOKENS": "{a-token: ["},
            "auth.tokens",
            "expected a mapping of client names to token hashes",
        ),
    ],
    ids=["auth-text", "beside-an-unknown-key", "malformed-environment"],
)
def test_a_misplaced_token_is_never_shown(
    write_config: WriteConfig, auth: Any, environ: dict[str, str], key: str, reason: str
) -> None:
    """A token where a mapping belongs (auth itself, malformed FLASK_AUTH_TOKENS): its type or key, never its text."""
    path = write_config(config_with(auth=auth))
    with pytest.raises(ConfigError) as error:
        load_config({"FLASK_CONFIG": str(path), **environ})
    assert (error.value.key, reason in error.value.reason, "a-token" in str(error.value)) == (key, True, False)
