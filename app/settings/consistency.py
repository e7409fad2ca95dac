"""Settings checked together as every process will use them, the factory's Celery defaults applied.

Each mistake would otherwise show only later and elsewhere: a task the API accepted killed at its
time limit, a 500 from ``GET /task/<id>``, a retry wait that ignores its base. So would those of
message signing (``task_serializer: auth``, the template's docs/security.md), which Celery checks
late or never: it reads the key and certificates in ``setup_security()`` (a missing file: a
traceback), never checks that the store verifies them (a mismatch: every worker drops every
message), and ``accept_content: [auth]`` alone refuses the JSON results.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from celery.app.defaults import DEFAULT_SECURITY_DIGEST
from kombu.serialization import registry

from app.settings.celery_defaults import celery_settings
from app.settings.file import ConfigError


def consistent(path: Path, settings: dict[str, Any]) -> dict[str, Any]:
    """``settings`` (by their Flask names), once no two contradict each other and signing works; else ConfigError."""
    celery = celery_settings(settings["CELERY"])  # the factory's defaults count, as in the worker
    if not celery["result_extended"]:
        reason = "must stay true: GET /task/<id> reads a retrying task's attempt count from its stored result"
        raise ConfigError(path, "celery.result_extended", reason)
    # Unset, null or 0: no limit (Celery's meaning). The lower one stops the task first.
    if limits := sorted((celery[key], key) for key in ("task_soft_time_limit", "task_time_limit") if celery.get(key)):
        limit, limit_key = limits[0]
        for key in ("sample_task_seconds", "sample_task_max_seconds"):
            if not (seconds := settings[key.upper()]) < limit:
                reason = f"expected less than celery.{limit_key} ({limit} s), which would stop the task, got {seconds}"
                raise ConfigError(path, key, reason)
    backoff, cap = settings["RETRY_BACKOFF_SECONDS"], settings["RETRY_BACKOFF_MAX_SECONDS"]
    if backoff > cap:
        reason = f"expected at most retry_backoff_max_seconds ({cap}), which caps every wait, got {backoff}"
        raise ConfigError(path, "retry_backoff_seconds", reason)
    check_signing(path, celery)
    return settings


def check_signing(path: Path, celery: Mapping[str, Any]) -> None:
    """Raise ConfigError unless signing is off, or on with settings Celery can use and a key its store verifies."""
    if celery["task_serializer"] != "auth":
        if given := [key for key in ("security_key", "security_certificate", "security_cert_store") if key in celery]:
            reason = f"expected auth, which these keys are for: celery.{', celery.'.join(given)}"
            raise ConfigError(path, "celery.task_serializer", reason)
        return
    if (accepted := celery["accept_content"]) != ["auth"]:
        reason = f"expected [auth] alone with task_serializer auth (Celery signs nothing otherwise), got {accepted}"
        raise ConfigError(path, "celery.accept_content", reason)
    results = set(celery.get("result_accept_content") or ())  # by name or content type, as Celery takes either
    if not results & {name := celery["result_serializer"], registry.name_to_type.get(name)}:
        reason = f"expected a list with {name} (result_serializer): unset, it is accept_content, which refuses results"
        raise ConfigError(path, "celery.result_accept_content", reason)
    # Imported here: only a service that signs loads cryptography (a tenth of a second).
    from celery.exceptions import SecurityError
    from celery.security.certificate import Certificate, FSCertStore
    from celery.security.key import PrivateKey
    from celery.security.utils import get_digest_algorithm

    def load(key: str, make: Callable[[str], Any], default: str | None = None) -> Any:
        if not (value := celery.get(key, default)):
            raise ConfigError(path, f"celery.{key}", "missing required key with task_serializer auth")
        try:
            return make(value)
        # TypeError: an encrypted key without its password; AttributeError: a digest cryptography lacks.
        except (OSError, SecurityError, TypeError, AttributeError) as error:
            reason = getattr(error, "strerror", None) or error
            raise ConfigError(path, f"celery.{key}", f"cannot use {value}: {reason}") from None

    key = load("security_key", lambda file: PrivateKey(Path(file).read_text(), celery.get("security_key_password")))
    certificate = load("security_certificate", lambda file: Certificate(Path(file).read_text()))
    store = load("security_cert_store", FSCertStore)
    digest = load("security_digest", get_digest_algorithm, DEFAULT_SECURITY_DIGEST)
    # As a worker takes a message: its signer found by issuer and serial, the signature checked.
    try:
        store[certificate.get_id()].verify(b"probe", key.sign(b"probe", digest), digest)
    except (SecurityError, TypeError):  # TypeError: Celery's bad signature (its reraise_errors() catches a module)
        missing = f"certificate {certificate.get_id()!r} (celery.security_certificate's issuer and serial)"
        reason = f"has no {missing} that verifies celery.security_key's signatures: workers would drop every message"
        raise ConfigError(path, "celery.security_cert_store", reason) from None
