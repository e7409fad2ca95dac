"""Message signing (``task_serializer: auth``, the template's docs/security.md), checked at startup as Celery does not.

Celery reads the key and certificates in ``setup_security()`` (a missing file: a traceback),
never checks that the store verifies them (a mismatch: every worker drops every message),
and ``accept_content: [auth]`` alone refuses the JSON results. Each stops startup here instead.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from celery.app.defaults import DEFAULT_SECURITY_DIGEST
from kombu.serialization import registry

from app.settings.file import ConfigError


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
