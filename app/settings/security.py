"""Who may call, how much, what signs: ``auth``, ``limits``, ``internal_port``, ``secret_key``, message signing."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from contextlib import suppress
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from celery.app.defaults import DEFAULT_SECURITY_DIGEST
from kombu.serialization import registry
from limits import parse_many

from app.settings.file import ConfigError, type_name
from app.settings.keys import Settings

# A client's name goes on log lines and into keys: nothing that could forge either.
CLIENT_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
SECURITY_KEYS = frozenset({"auth", "limits", "internal_port", "secret_key"})
# Secret keys published in this repository (the seed's example config and README): anyone
# can sign sessions with them, so they are accepted only in debug mode.
PUBLIC_SECRET_KEYS = frozenset({"my_secret_key"})
LIMIT_DEFAULTS: dict[str, Any] = {"start_rate": "10/second", "unfinished_tasks": 100, "storage_url": None}


def security_settings(path: Path, settings: Settings, environ: Mapping[str, str]) -> dict[str, Any]:
    """The Flask settings of these keys, or ConfigError naming the key at fault."""
    secret_key = settings.secret_key
    # FLASK_DEBUG as Flask reads it (flask.helpers.get_debug_flag).
    if secret_key in PUBLIC_SECRET_KEYS and environ.get("FLASK_DEBUG", "").lower() in ("", "0", "false", "no"):
        raise ConfigError(path, "secret_key", "is the published example value: set your own (or FLASK_SECRET_KEY)")
    if "auth" not in settings.model_fields_set:
        raise ConfigError(path, "auth", "missing required key: set auth.tokens (or FLASK_AUTH_TOKENS), or auth: false")
    internal_port = settings.internal_port
    if type(internal_port) is not int or not 1 <= internal_port <= 65535 or internal_port == settings.port:
        raise ConfigError(path, "internal_port", f"expected a TCP port other than `port`, got {internal_port!r}")
    tokens, limits = _tokens(path, settings.auth), _limits(path, settings.limits, settings.celery.result_backend)
    return {"SECRET_KEY": secret_key, "AUTH_TOKENS": tokens, "LIMITS": limits, "INTERNAL_PORT": internal_port}


def _tokens(path: Path, auth: Any) -> dict[str, bytes] | None:
    """Each client's name and its token's SHA-256; None for ``auth: false`` (no authentication)."""
    if auth is False:
        return None
    if not isinstance(auth, dict) or set(auth) != {"tokens"}:  # never a value, which may be a token: keys or type
        got = f"keys {list(auth)}" if isinstance(auth, dict) else auth if isinstance(auth, bool) else type_name(auth)
        raise ConfigError(path, "auth", f"expected false, or a mapping with `tokens` alone, got {got}")
    tokens = auth["tokens"]
    if isinstance(tokens, str):  # FLASK_AUTH_TOKENS: the same mapping, as JSON or YAML (malformed: a string still)
        with suppress(yaml.YAMLError):  # whose message would quote the text: a token, maybe
            tokens = yaml.safe_load(tokens)
    if not isinstance(tokens, dict) or not tokens:
        got = type_name(tokens) if tokens != {} else "none (python cli.py new-token NAME, or FLASK_AUTH_TOKENS)"
        raise ConfigError(path, "auth.tokens", f"expected a mapping of client names to token hashes, got {got}")
    for name, digest in tokens.items():
        if not isinstance(name, str) or not CLIENT_NAME.fullmatch(name):
            reason = f"expected client names of 1 to 64 letters, digits, . _ -, got {name!r}"
            raise ConfigError(path, "auth.tokens", reason)
        if not isinstance(digest, str) or not DIGEST.fullmatch(digest):
            reason = "expected sha256:<64 hex digits> (python cli.py new-token NAME), never the token itself"
            raise ConfigError(path, f"auth.tokens.{name}", reason)
    return {name: bytes.fromhex(digest[7:]) for name, digest in tokens.items()}


def _limits(path: Path, limits: Any, backend: str) -> dict[str, Any]:
    limits = limits or {}
    if not isinstance(limits, dict) or set(limits) - set(LIMIT_DEFAULTS):
        raise ConfigError(path, "limits", f"expected a mapping with keys among {', '.join(LIMIT_DEFAULTS)}")
    settings = {**LIMIT_DEFAULTS, **limits}
    try:
        parse_many(rate := settings["start_rate"])
    except (ValueError, TypeError):
        raise ConfigError(path, "limits.start_rate", f"expected a rate such as 10/second, got {rate!r}") from None
    if type(settings["unfinished_tasks"]) is not int or settings["unfinished_tasks"] < 1:
        raise ConfigError(path, "limits.unfinished_tasks", f"expected 1 or more, got {settings['unfinished_tasks']!r}")
    if settings["storage_url"] is None:  # the result backend's Redis where there is one, so every process counts alike
        settings["storage_url"] = backend if urlsplit(backend).scheme in ("redis", "rediss") else "memory://"
    # The cap counts in Redis or in memory (app/web/unfinished_tasks.py): the rate in the same place.
    url = settings["storage_url"]
    if not isinstance(url, str) or urlsplit(url).scheme not in ("redis", "rediss", "memory"):
        raise ConfigError(path, "limits.storage_url", f"expected a redis://, rediss:// or memory:// URL, got {url!r}")
    return settings


def check_signing(path: Path, celery: Mapping[str, Any]) -> None:
    """Raise ConfigError unless signing is off, or on with settings Celery can use and a key its store verifies.

    ``task_serializer: auth`` (the template's docs/security.md): Celery reads the key and certificates in
    ``setup_security()`` (a missing file: a traceback), never checks that the store verifies them (a mismatch:
    every worker drops every message), and ``accept_content: [auth]`` alone refuses the JSON results.
    """
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
