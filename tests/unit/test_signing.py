"""Message signing: its settings checked at startup, and setup_security() called when, and only when, asked."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from celery import Celery
from celery.exceptions import SecurityError
from celery.security.certificate import FSCertStore
from celery.security.serialization import SecureSerializer
from cryptography.hazmat.primitives import serialization
from kombu.exceptions import ContentDisallowed
from kombu.serialization import dumps, loads, prepare_accept_content

from app import create_app, create_app_or_exit
from app.settings import load_config
from tests import ROOT
from tests.signing import Signer, kombu_serializers_kept, write_signer
from tests.tasks import echoed_task
from tests.unit.conftest import IN_MEMORY_CONFIG, WriteConfig
from tests.unit.test_consistency import TOKENS


@dataclass(frozen=True)
class Keys:
    """The signers the tests configure; the RSA ones in `folder`."""

    folder: Path
    service: Signer
    other: Signer
    elliptic: Signer


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    """The service's RSA key and another one in one folder, an elliptic-curve one apart, each with its certificate."""
    folder, elliptic = tmp_path_factory.mktemp("signing"), tmp_path_factory.mktemp("elliptic")
    service, other = write_signer(folder, "service"), write_signer(folder, "other")
    return Keys(folder, service, other, write_signer(elliptic, "ec", rsa_key=False))


@pytest.fixture(autouse=True)
def _serializers_kept() -> Iterator[None]:
    """kombu's registry as before each test: a signing app changes it for the whole process."""
    with kombu_serializers_kept():
        yield


def signing_config(celery: dict[str, Any]) -> dict[str, Any]:
    """The in-memory config with these Celery settings added."""
    return {**IN_MEMORY_CONFIG, "celery": {**IN_MEMORY_CONFIG["celery"], **celery}}


def encrypted_key(keys: Keys) -> str:
    """The service's key in a file of its own, encrypted with a password."""
    key = serialization.load_pem_private_key(keys.service.key.read_bytes(), password=None)
    encryption = serialization.BestAvailableEncryption(b"a password")
    path = keys.folder / "encrypted-key.pem"
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption))
    return str(path)


# The `celery:` settings of a test case, made from the keys.
CelerySettings = Callable[[Keys], dict[str, Any]]
MISTAKES = [
    pytest.param(
        lambda k: {**k.service.settings(), "security_key": str(k.folder / "absent.pem")},
        "celery.security_key",
        r"cannot use .*/absent\.pem: No such file or directory",
        id="missing-key-file",
    ),
    pytest.param(
        lambda k: k.elliptic.settings(),
        "celery.security_key",
        r"cannot use .*/ec-key\.pem: Invalid private key: ValueError\('Non-RSA keys are not supported\.'\)",
        id="elliptic-curve-key",
    ),
    pytest.param(
        lambda k: {**k.service.settings(), "security_key": encrypted_key(k)},
        "celery.security_key",
        r"cannot use .*/encrypted-key\.pem: Password was not given but private key is encrypted",
        id="encrypted-key-without-its-password",
    ),
    pytest.param(
        lambda k: {**k.service.settings(), "security_certificate": str(k.service.key)},
        "celery.security_certificate",
        r"cannot use .*/service-key\.pem: Invalid certificate: .*",
        id="key-given-as-certificate",
    ),
    pytest.param(
        lambda k: {key: value for key, value in k.service.settings().items() if key != "security_cert_store"},
        "celery.security_cert_store",
        "missing required key with task_serializer auth",
        id="no-store",
    ),
    pytest.param(
        lambda k: k.service.settings(store=k.other.certificate),
        "celery.security_cert_store",
        r"has no certificate '.*' \(celery.security_certificate's issuer and serial\) that verifies .*",
        id="store-without-the-certificate",
    ),
    pytest.param(
        lambda k: k.service.settings(store=k.folder / "nothing-*.pem"),
        "celery.security_cert_store",
        r"has no certificate .*",
        id="store-matching-no-file",
    ),
    pytest.param(
        lambda k: {
            **k.service.settings(),
            "security_certificate": str(k.other.certificate),
            "security_cert_store": str(k.other.certificate),
        },
        "celery.security_cert_store",
        r"has no certificate .* that verifies celery.security_key's signatures: workers would drop every message",
        id="certificate-of-another-key",
    ),
    pytest.param(
        lambda k: {**k.service.settings(), "security_digest": "sha999"},
        "celery.security_digest",
        r"cannot use sha999: module 'cryptography.hazmat.primitives.hashes' has no attribute 'SHA999'",
        id="unknown-digest",
    ),
    pytest.param(
        lambda k: {**k.service.settings(), "accept_content": ["auth", "json"]},
        "celery.accept_content",
        re.escape(
            "expected [auth] alone with task_serializer auth (Celery signs nothing otherwise), got ['auth', 'json']"
        ),
        id="json-accepted-too",
    ),
    pytest.param(
        lambda k: {key: value for key, value in k.service.settings().items() if key != "accept_content"},
        "celery.accept_content",
        re.escape("expected [auth] alone with task_serializer auth (Celery signs nothing otherwise), got ['json']"),
        id="the-factorys-default-accept-content",
    ),
    pytest.param(
        lambda k: {key: value for key, value in k.service.settings().items() if key != "result_accept_content"},
        "celery.result_accept_content",
        re.escape("expected a list with json (result_serializer): unset, it is accept_content, which refuses results"),
        id="json-results-refused",
    ),
    pytest.param(
        lambda k: {**k.service.settings(), "task_serializer": "json", "accept_content": ["json"]},
        "celery.task_serializer",
        "expected auth, which these keys are for: "
        "celery.security_key, celery.security_certificate, celery.security_cert_store",
        id="key-without-the-auth-serializer",
    ),
]


@pytest.mark.parametrize(("celery", "key", "reason"), MISTAKES)
def test_a_signing_mistake_stops_startup_with_one_line(
    write_config: WriteConfig,
    capsys: pytest.CaptureFixture[str],
    keys: Keys,
    celery: CelerySettings,
    key: str,
    reason: str,
) -> None:
    """Each mistake ends the process with status 2 and one line naming the file, the key and what is wrong."""
    path = write_config(signing_config(celery(keys)))
    with pytest.raises(SystemExit) as caught:
        create_app_or_exit()
    out, err = capsys.readouterr()
    assert (caught.value.code, out) == (2, "")
    assert re.fullmatch(f"error: config error in {re.escape(str(path))}, key '{key}': {reason}\n", err), err


@pytest.mark.parametrize(
    "celery",
    [
        pytest.param(lambda k: k.service.settings(), id="own-certificate-as-store"),
        pytest.param(lambda k: k.service.settings(store=k.folder / "*-cert.pem"), id="glob-of-several"),
        pytest.param(lambda k: {**k.service.settings(), "security_digest": "sha512"}, id="sha512"),
        pytest.param(
            lambda k: {
                **k.service.settings(),
                "security_key": encrypted_key(k),
                "security_key_password": b"a password",
            },
            id="encrypted-key-with-its-password",  # YAML's !!binary: Celery's table declares bytes
        ),
        pytest.param(
            lambda k: {**k.service.settings(), "result_accept_content": ["application/json"]}, id="content-type"
        ),
    ],
)
def test_a_signing_config_starts(write_config: WriteConfig, keys: Keys, celery: CelerySettings) -> None:
    """A key, its certificate in the store, [auth] alone accepted and JSON results: the app starts, signing."""
    write_config(signing_config(celery(keys)))
    assert create_app().extensions["celery"].conf.task_serializer == "auth"


@pytest.mark.parametrize(
    ("celery", "calls"),
    [
        pytest.param(lambda k: {}, [], id="off"),
        pytest.param(lambda k: k.service.settings(), [{"digest": "sha256"}], id="on"),
        pytest.param(
            lambda k: {**k.service.settings(), "security_digest": "sha384"}, [{"digest": "sha384"}], id="digest"
        ),
    ],
)
def test_setup_security_is_called_only_when_asked(
    write_config: WriteConfig, monkeypatch: pytest.MonkeyPatch, keys: Keys, celery: CelerySettings, calls: list[Any]
) -> None:
    """The factory sets up signing once when the config signs, with its digest; never otherwise."""
    seen: list[dict[str, Any]] = []
    monkeypatch.setattr(Celery, "setup_security", lambda self, **options: seen.append(options))
    write_config(signing_config(celery(keys)))
    create_app()
    assert seen == calls


def test_what_the_app_publishes_is_signed_with_the_configured_digest(write_config: WriteConfig, keys: Keys) -> None:
    """A task leaves signed by the service's key with security_digest, as its store verifies; JSON is refused."""
    queue = f"signing-{uuid.uuid4()}"  # the memory transport's queues are the process's
    write_config(signing_config({**keys.service.settings(), "security_digest": "sha512", "task_default_queue": queue}))
    celery_app = create_app().extensions["celery"]
    celery_app.tasks[echoed_task.name].delay("hello")
    with celery_app.connection_for_read() as connection:
        message = connection.SimpleQueue(queue).get(timeout=1)
    assert message.content_type == "application/data"
    store = FSCertStore(str(keys.service.certificate))
    assert SecureSerializer(cert_store=store, digest="sha512").deserialize(message.body)[0] == ["hello"]
    with pytest.raises(SecurityError):  # Celery's own default, which it would have used
        SecureSerializer(cert_store=store, digest="sha256").deserialize(message.body)
    content_type, encoding, unsigned = dumps(["hello"], serializer="json")
    with pytest.raises(ContentDisallowed):  # as the worker reads it: only what the store verifies
        loads(unsigned, content_type, encoding, accept=prepare_accept_content(celery_app.conf.accept_content))


def test_the_configs_commented_example_signs_once_uncommented(tmp_path: Path) -> None:
    """config/rabbitmq-redis.yaml's signing lines, uncommented, with the key and certificate where they say, load."""
    write_signer(tmp_path, "signing")  # signing-key.pem, signing-cert.pem
    shipped = (ROOT / "config" / "rabbitmq-redis.yaml").read_text()
    uncommented = re.sub(r"^  # (\w+: )", r"  \1", shipped, flags=re.MULTILINE).replace("/run/secrets/", f"{tmp_path}/")
    assert uncommented != shipped
    (path := tmp_path / "config.yaml").write_text(uncommented)
    celery = load_config({"FLASK_CONFIG": str(path), "FLASK_AUTH_TOKENS": TOKENS})["CELERY"]
    assert (celery["task_serializer"], celery["security_key"]) == ("auth", f"{tmp_path}/signing-key.pem")
