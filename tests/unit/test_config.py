"""Reading, overriding and validating the config file (app/settings/__init__.py; its keys: app/settings/keys.py)."""

from __future__ import annotations

import copy
import datetime
import io
import json
import math
from pathlib import Path
from typing import Any

import pytest
from celery.app.defaults import NAMESPACES, Option

from app.settings import ConfigError, load_config
from app.settings.celery_defaults import (
    BROKER_DEFAULTS,
    CELERY_DEFAULTS,
    DATABASE_BACKEND_DEFAULTS,
    LIBPQ_CONNECT_ARGS,
    celery_settings,
)
from tests import ROOT
from tests.unit.conftest import IN_MEMORY_CONFIG, WriteConfig

SEED_YAML = """\
port: 8080
secret_key: my_secret_key
auth: false
celery:
  broker_url: amqp://localhost:5672
  result_backend: redis://localhost:6379
"""


def config_with(**changes: Any) -> dict[str, Any]:
    """The in-memory config with top-level keys replaced (None removes a key)."""
    data = copy.deepcopy(IN_MEMORY_CONFIG)
    for key, value in changes.items():
        data.pop(key) if value is None else data.__setitem__(key, value)
    return data


def celery_with(**changes: Any) -> dict[str, Any]:
    """The in-memory config with Celery settings replaced (None removes a setting)."""
    celery = dict(IN_MEMORY_CONFIG["celery"])
    for key, value in changes.items():
        celery.pop(key) if value is None else celery.__setitem__(key, value)
    return config_with(celery=celery)


def test_seed_format_is_read_as_is(tmp_path: Path) -> None:
    """The original project's YAML file works once it says whether clients authenticate (debug: its key is public)."""
    path = tmp_path / "api-config.yaml"
    path.write_text(SEED_YAML)
    settings = load_config({"FLASK_CONFIG": str(path), "FLASK_DEBUG": "1"})
    assert settings == {
        "CONFIG_FILE": str(path),
        "SECRET_KEY": "my_secret_key",
        "PORT": 8080,
        "SAMPLE_TASK_SECONDS": 5,
        "SAMPLE_TASK_MAX_SECONDS": 240,
        "RETRY_ATTEMPTS": 5,
        "RETRY_BACKOFF_SECONDS": 1,
        "RETRY_BACKOFF_MAX_SECONDS": 60,
        "OPENTELEMETRY": False,
        "CELERY": {"broker_url": "amqp://localhost:5672", "result_backend": "redis://localhost:6379"},
        "AUTH_TOKENS": None,
        "LIMITS": {"start_rate": "10/second", "unfinished_tasks": 100, "storage_url": "redis://localhost:6379"},
        "INTERNAL_PORT": 9090,
    }


def test_json_file_is_read_like_yaml(write_config: WriteConfig) -> None:
    """A .json file gives the same settings as the same data in YAML."""
    from_yaml = load_config({"FLASK_CONFIG": str(write_config(name="c.yaml"))})
    from_json = load_config({"FLASK_CONFIG": str(write_config(name="c.json"))})
    assert {**from_json, "CONFIG_FILE": None} == {**from_yaml, "CONFIG_FILE": None}


def test_default_path_is_secrets_api_config_yaml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without FLASK_CONFIG the file is ./secrets/api-config.yaml."""
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "api-config.yaml").write_text(SEED_YAML)
    monkeypatch.chdir(tmp_path)
    assert load_config({"FLASK_SECRET_KEY": "s"})["CONFIG_FILE"] == "secrets/api-config.yaml"


def test_port_and_sample_seconds_have_defaults(write_config: WriteConfig) -> None:
    """Without `port` and `sample_task_seconds`: 8080 and 5."""
    path = write_config(config_with(sample_task_seconds=None))  # and IN_MEMORY_CONFIG sets no port
    settings = load_config({"FLASK_CONFIG": str(path)})
    assert (settings["PORT"], settings["SAMPLE_TASK_SECONDS"]) == (8080, 5)


def test_one_attempt_means_no_retries(write_config: WriteConfig) -> None:
    """`retry_attempts: 1` is the least accepted: the first run only."""
    assert load_config({"FLASK_CONFIG": str(write_config(config_with(retry_attempts=1)))})["RETRY_ATTEMPTS"] == 1


@pytest.mark.parametrize("port", [1, 65535], ids=["lowest", "highest"])
def test_every_tcp_port_is_accepted(write_config: WriteConfig, port: int) -> None:
    """Both ends of the TCP port range are valid."""
    assert load_config({"FLASK_CONFIG": str(write_config(config_with(port=port)))})["PORT"] == port


def test_other_celery_settings_pass_through(write_config: WriteConfig) -> None:
    """Any Celery setting under `celery:` reaches the settings untouched."""
    path = write_config(celery_with(task_default_queue="work", worker_concurrency=3))
    celery = load_config({"FLASK_CONFIG": str(path)})["CELERY"]
    assert celery["task_default_queue"] == "work" and celery["worker_concurrency"] == 3


WELL_TYPED_CELERY_SETTINGS = {
    "worker_prefetch_multiplier": 4,
    "worker_max_tasks_per_child": None,
    "task_soft_time_limit": 2.5,
    "task_time_limit": 5,
    "broker_heartbeat_checkrate": 2.0,
    "broker_use_ssl": {"cert_reqs": 2},
    "include": "tests.tasks",
    "imports": ["app.tasks"],
    "task_default_priority": 5,
    "task_default_delivery_mode": 2,
    "task_default_rate_limit": "10/m",
    "task_routes": {"app.tasks.*": {"queue": "work"}},
    "security_key_password": b"binary",
}


@pytest.mark.parametrize(("key", "value"), WELL_TYPED_CELERY_SETTINGS.items(), ids=WELL_TYPED_CELERY_SETTINGS)
def test_celery_settings_of_a_type_celery_uses_are_accepted(write_config: WriteConfig, key: str, value: Any) -> None:
    """Values of Celery's declared type, of its default's type, or that Celery also takes, pass."""
    # The sample task may ask for no more than the lowest time limit here allows (2.5 s).
    path = write_config(config_with(sample_task_max_seconds=1, celery={**IN_MEMORY_CONFIG["celery"], key: value}))
    assert load_config({"FLASK_CONFIG": str(path)})["CELERY"][key] == value


def test_a_setting_of_a_type_unknown_here_takes_any_value(
    write_config: WriteConfig, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A newer Celery's setting of a type the check does not know: any value passes, for Celery to check, silently."""
    monkeypatch.setitem(NAMESPACES["worker"], "future_setting", Option(None, type="float_or_none"))
    path = write_config(celery_with(worker_future_setting=[1.5]))
    assert load_config({"FLASK_CONFIG": str(path)})["CELERY"]["worker_future_setting"] == [1.5]
    assert caplog.records == []


def test_factory_defaults_pass_the_check(write_config: WriteConfig) -> None:
    """Every default the factory sets could be written in the file as it is."""
    database = {**DATABASE_BACKEND_DEFAULTS, "database_engine_options": {"connect_args": LIBPQ_CONNECT_ARGS}}
    for broker in BROKER_DEFAULTS.values():
        defaults = json.loads(json.dumps({**CELERY_DEFAULTS, **broker, **database}))  # as a file holds them
        path = write_config(config_with(celery={**defaults, **IN_MEMORY_CONFIG["celery"]}))
        assert load_config({"FLASK_CONFIG": str(path)})["CELERY"]["task_acks_late"] is True


@pytest.mark.parametrize(
    ("variable", "setting", "read"),
    [
        ("FLASK_SECRET_KEY", "secret_key", lambda s: s["SECRET_KEY"]),
        ("CELERY_BROKER_URL", "broker_url", lambda s: s["CELERY"]["broker_url"]),
        ("CELERY_RESULT_BACKEND", "result_backend", lambda s: s["CELERY"]["result_backend"]),
    ],
    ids=["secret-key", "broker-url", "result-backend"],
)
@pytest.mark.parametrize("in_file", [True, False], ids=["overrides-file", "replaces-missing-key"])
def test_environment_overrides_secrets(
    write_config: WriteConfig, variable: str, setting: str, read: Any, in_file: bool
) -> None:
    """Each secret can come from its environment variable, with or without the file's value."""
    removed = {} if in_file else {setting: None}
    path = write_config((config_with if setting == "secret_key" else celery_with)(**removed))
    assert read(load_config({"FLASK_CONFIG": str(path), variable: "from-env"})) == "from-env"


def test_empty_environment_variable_does_not_override(write_config: WriteConfig) -> None:
    """An exported but empty variable leaves the file's value in place."""
    path = write_config()
    settings = load_config({"FLASK_CONFIG": str(path), "CELERY_BROKER_URL": ""})
    assert settings["CELERY"]["broker_url"] == "memory://"


def test_only_the_documented_variables_override_the_file(write_config: WriteConfig) -> None:
    """PORT (set by the Dockerfile), SECRET_KEY, any other CELERY_* variable: the file's settings stay."""
    path = write_config(config_with(port=8081))
    environ = {"PORT": "9000", "SECRET_KEY": "other", "SAMPLE_TASK_SECONDS": "x", "CELERY_CONFIG_MODULE": "m"}
    settings = load_config({"FLASK_CONFIG": str(path), **environ})
    assert (settings["PORT"], settings["SECRET_KEY"], settings["SAMPLE_TASK_SECONDS"]) == (8081, "unit-test-secret", 0)
    assert settings["CELERY"] == IN_MEMORY_CONFIG["celery"]


def test_a_misspelt_required_key_is_named_as_a_typo(write_config: WriteConfig) -> None:
    """`secret-key:` for `secret_key:`: the typo is reported, not the missing key it leaves."""
    path = write_config({**config_with(secret_key=None, port="8080"), "secret-key": "s"})
    with pytest.raises(ConfigError) as caught:
        load_config({"FLASK_CONFIG": str(path)})
    assert (caught.value.key, caught.value.reason) == ("secret-key", "unknown key (a typo?)")


BAD_FILES = [
    pytest.param("a.yaml", None, None, "cannot read the file: No such file or directory", id="missing-file"),
    pytest.param("a.yaml", b"\xff\xfe", None, "cannot read the file: it is not UTF-8 text", id="not-text"),
    pytest.param(
        "a.yaml",
        "port: [8080\n",
        None,
        "malformed YAML at line 2, column 1: expected ',' or ']', but got '<stream end>'",
        id="malformed-yaml",
    ),
    pytest.param(
        "a.yaml",
        "port: \x01\n",
        None,
        "malformed YAML: unacceptable character #x0001: special characters are not allowed",
        id="yaml-control-character",
    ),
    pytest.param(
        "a.json",
        '{"port": 8080,}',
        None,
        "malformed JSON at line 1, column 15: Expecting property name enclosed in double quotes",
        id="malformed-json",
    ),
    pytest.param("a.yaml", "- port\n", None, "expected a mapping of keys to values at the top level", id="list"),
    pytest.param("a.yaml", "", None, "expected a mapping of keys to values at the top level", id="empty-file"),
    pytest.param(
        "a.yaml",
        config_with(secret_key=""),
        "secret_key",
        "expected a non-empty string, got an empty string",
        id="empty-secret-key",
    ),
    pytest.param(
        "a.yaml",
        config_with(secret_key=42),
        "secret_key",
        "expected a non-empty string, got an integer",
        id="secret-key-number",
    ),
    pytest.param("a.yaml", config_with(celery=None), "celery", "missing required key", id="missing-celery"),
    pytest.param(
        "a.yaml",
        config_with(celery="amqp://"),
        "celery",
        "expected a mapping of Celery settings, got a string",
        id="celery-not-mapping",
    ),
    pytest.param(
        "a.yaml",
        celery_with(broker_url=None),
        "celery.broker_url",
        "missing required key (or set CELERY_BROKER_URL)",
        id="missing-broker-url",
    ),
    pytest.param(
        "a.json",
        celery_with(result_backend=None),
        "celery.result_backend",
        "missing required key (or set CELERY_RESULT_BACKEND)",
        id="missing-result-backend-json",
    ),
    pytest.param(
        "a.yaml",
        celery_with(broker_url=["amqp://"]),
        "celery.broker_url",
        "expected a non-empty string, got a list",
        id="broker-url-list",
    ),
    pytest.param("a.yaml", celery_with(brokerurl="x"), "celery.brokerurl", "unknown key (a typo?)", id="celery-typo"),
    *[
        pytest.param(
            "a.yaml",
            config_with(celery={**IN_MEMORY_CONFIG["celery"], key: value}),
            f"celery.{key}",
            reason,
            id=f"celery-{id_}",
        )
        for key, value, reason, id_ in [
            ("worker_prefetch_multiplier", "lots", "expected an integer, got a string", "int-string"),
            ("worker_prefetch_multiplier", True, "expected an integer, got a boolean", "int-boolean"),
            ("worker_prefetch_multiplier", 1.5, "expected an integer, got a number", "int-float"),
            ("worker_max_tasks_per_child", "10", "expected an integer or an empty value, got a string", "int-or-null"),
            ("task_soft_time_limit", "5", "expected a number or an empty value, got a string", "float-string"),
            ("task_acks_late", "yes", "expected a boolean, got a string", "bool-string"),
            ("broker_transport_options", [], "expected a mapping, got a list", "dict-list"),
            ("accept_content", "json", "expected a list, got a string", "list-string"),
            ("include", 5, "expected a list or a string, got an integer", "tuple-int"),
            ("worker_pool", None, "expected a string, got an empty value", "string-null"),
            ("override_backends", "redis", "expected a mapping, got a string", "override-backends"),
            ("result_backend_thread_safe", "yes", "expected a boolean, got a string", "thread-safe-string"),
            ("security_key_password", "pw", "expected binary data or an empty value, got a string", "bytes"),
            # Declared with a class (int), not a name: read as the name.
            ("beat_cron_starting_deadline", "soon", "expected an integer or an empty value, got a string", "class"),
        ]
    ],
    pytest.param(
        "a.yaml",
        # A setting Celery takes any value for, then a bad one (the file keeps this order).
        celery_with(task_annotations={"*": {"rate_limit": "10/s"}}, task_track_started="yes"),
        "celery.task_track_started",
        "expected a boolean, got a string",
        id="celery-bad-after-any",
    ),
    pytest.param("a.yaml", config_with(secret="x"), "secret", "unknown key (a typo?)", id="top-level-typo"),
    pytest.param("a.yaml", {**config_with(), 1: "x"}, "1", "unknown key (a typo?)", id="top-level-number"),
    pytest.param(
        "a.yaml",
        config_with(celery={**IN_MEMORY_CONFIG["celery"], 5: "x"}),
        "celery.5",
        "unknown key (a typo?)",
        id="celery-number",
    ),
    pytest.param(
        "a.yaml",
        config_with(opentelemetry="yes"),
        "opentelemetry",
        "expected true or false, got a string",
        id="opentelemetry-string",
    ),
    pytest.param("a.yaml", config_with(port="8080"), "port", "expected an integer, got a string", id="port-string"),
    pytest.param("a.yaml", config_with(port=True), "port", "expected an integer, got a boolean", id="port-boolean"),
    pytest.param(
        "a.yaml", config_with(port=datetime.date(2026, 1, 1)), "port", "expected an integer, got date", id="port-date"
    ),
    pytest.param("a.yaml", config_with(port=0), "port", "expected a TCP port from 1 to 65535, got 0", id="port-0"),
    pytest.param(
        "a.yaml", config_with(port=65536), "port", "expected a TCP port from 1 to 65535, got 65536", id="port-65536"
    ),
    pytest.param(
        "a.yaml",
        {**config_with(), "sample_task_seconds": None},
        "sample_task_seconds",
        "expected a number, got an empty value",
        id="seconds-null",
    ),
    pytest.param(
        "a.yaml",
        config_with(retry_attempts=0),
        "retry_attempts",
        "expected 1 or more (the first run counts), got 0",
        id="retry-attempts-0",
    ),
    pytest.param(
        "a.yaml",
        config_with(retry_attempts=2.5),
        "retry_attempts",
        "expected an integer, got a number",
        id="attempts-float",
    ),
    pytest.param(
        "a.yaml",
        config_with(retry_backoff_seconds=-1),
        "retry_backoff_seconds",
        "expected a finite number, 0 or more, got -1",
        id="backoff-negative",
    ),
    pytest.param(
        "a.yaml",
        config_with(retry_backoff_max_seconds="1m"),
        "retry_backoff_max_seconds",
        "expected a number, got a string",
        id="backoff-max-string",
    ),
    pytest.param(
        "a.yaml",
        config_with(sample_task_max_seconds=math.inf),
        "sample_task_max_seconds",
        "expected a finite number, 0 or more, got inf",
        id="max-seconds-inf",
    ),
    pytest.param(
        "a.yaml",
        config_with(sample_task_seconds=-1),
        "sample_task_seconds",
        "expected a finite number, 0 or more, got -1",
        id="seconds-negative",
    ),
    pytest.param(
        "a.yaml",
        config_with(sample_task_seconds=math.inf),
        "sample_task_seconds",
        "expected a finite number, 0 or more, got inf",
        id="seconds-inf",
    ),
    pytest.param(
        "a.yaml",
        config_with(sample_task_seconds=math.nan),
        "sample_task_seconds",
        "expected a finite number, 0 or more, got nan",
        id="seconds-nan",
    ),
]


@pytest.mark.parametrize(("name", "content", "key", "reason"), BAD_FILES)
def test_bad_config_names_file_and_key(
    tmp_path: Path, write_config: WriteConfig, name: str, content: Any, key: str | None, reason: str
) -> None:
    """Every unusable config gives one ConfigError naming the file, the key and why."""
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif isinstance(content, str):
        path.write_text(content)
    elif content is not None:
        write_config(content, name=name)
    with pytest.raises(ConfigError) as caught:
        load_config({"FLASK_CONFIG": str(path)})
    assert (caught.value.source, caught.value.key, caught.value.reason) == (str(path), key, reason)
    where = f", key '{key}'" if key else ""
    assert str(caught.value) == f"config error in {path}{where}: {reason}"


def test_a_file_is_read_as_utf_8_whatever_the_locale(
    write_config: WriteConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A secret key with accents reads the same where the locale's encoding, open()'s default, is Latin-1."""
    path = write_config()
    path.write_text(path.read_text(encoding="utf-8").replace("unit-test-secret", "clé-secrète"), encoding="utf-8")
    monkeypatch.setattr(io, "text_encoding", lambda encoding, stacklevel=2: encoding or "latin-1")
    assert load_config({"FLASK_CONFIG": str(path)})["SECRET_KEY"] == "clé-secrète"


def test_directory_instead_of_file_is_a_config_error(tmp_path: Path) -> None:
    """A path that is not a readable file reports the operating system's reason."""
    with pytest.raises(ConfigError, match="cannot read the file: Is a directory"):
        load_config({"FLASK_CONFIG": str(tmp_path)})


def test_secret_values_never_appear_in_errors(write_config: WriteConfig) -> None:
    """A wrongly typed secret is described by its type, never echoed."""
    path = write_config(config_with(secret_key=["hunter2-secret"]))
    with pytest.raises(ConfigError) as caught:
        load_config({"FLASK_CONFIG": str(path)})
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize(
    ("environ", "accepted"),
    [
        ({}, False),
        ({"FLASK_DEBUG": "0"}, False),
        ({"FLASK_DEBUG": "False"}, False),
        ({"FLASK_DEBUG": "no"}, False),
        ({"FLASK_DEBUG": "1"}, True),
        ({"FLASK_DEBUG": "true"}, True),
        ({"FLASK_DEBUG": "yes"}, True),
    ],
    ids=["unset", "0", "False", "no", "1", "true", "yes"],
)
def test_published_example_secret_key_only_in_debug(
    write_config: WriteConfig, environ: dict[str, str], accepted: bool
) -> None:
    """The example's `my_secret_key` is public: refused unless FLASK_DEBUG is on."""
    environ = {"FLASK_CONFIG": str(write_config(config_with(secret_key="my_secret_key"))), **environ}
    if accepted:
        assert load_config(environ)["SECRET_KEY"] == "my_secret_key"
    else:
        with pytest.raises(ConfigError) as caught:
            load_config(environ)
        assert str(caught.value) == (
            f"config error in {environ['FLASK_CONFIG']}, key 'secret_key': "
            "is the published example value: set your own (or FLASK_SECRET_KEY)"
        )


@pytest.mark.parametrize(
    ("changes", "mode", "warned"),
    [
        ({}, 0o600, False),
        ({}, 0o640, False),
        ({}, 0o644, True),
        ({"secret_key": None}, 0o644, False),
        ({"secret_key": None, "celery": {"broker_url": "amqp://u:pw@h//", "result_backend": "rpc://"}}, 0o644, True),
    ],
    ids=["owner-only", "group", "everyone", "everyone-no-secrets", "everyone-url-password"],
)
def test_config_with_secrets_readable_by_all_is_warned(
    write_config: WriteConfig, caplog: pytest.LogCaptureFixture, changes: dict[str, Any], mode: int, warned: bool
) -> None:
    """A file holding a secret key or a password, readable by any user, gets a warning naming it."""
    path = write_config(config_with(**changes))
    path.chmod(mode)
    load_config({"FLASK_CONFIG": str(path), "FLASK_SECRET_KEY": "from-the-environment"})
    expected = f"config file {path} holds secrets but any user can read it: chmod o-r {path}"
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == ([expected] if warned else [])


def test_environment_cannot_hide_a_malformed_section(write_config: WriteConfig) -> None:
    """`celery:` that is not a mapping is reported even when the environment sets its URLs."""
    environ = {"FLASK_CONFIG": str(write_config(config_with(celery="amqp://"))), "CELERY_BROKER_URL": "amqp://h//"}
    with pytest.raises(ConfigError, match="key 'celery': expected a mapping of Celery settings, got a string"):
        load_config(environ)


def test_the_short_tasks_profile_reserves_four_and_keeps_late_acks() -> None:
    """config/short-tasks.yaml: prefetch 4 and no STARTED for millisecond tasks; late acks (nothing lost) kept."""
    config = load_config(
        {
            "FLASK_CONFIG": str(ROOT / "config" / "short-tasks.yaml"),
            "FLASK_AUTH_TOKENS": '{"a": "sha256:' + "0" * 64 + '"}',
        }
    )
    celery = celery_settings(config["CELERY"])
    assert (celery["worker_prefetch_multiplier"], celery["task_track_started"]) == (4, False)
    assert (celery["task_acks_late"], celery["task_reject_on_worker_lost"]) == (True, True)
