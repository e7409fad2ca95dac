"""Throwaway keys and certificates for message signing, made in a test's own folder (never committed)."""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from kombu.serialization import registry

DAY = datetime.timedelta(days=1)


@dataclass(frozen=True)
class Signer:
    """A private key and its self-signed certificate, each in a PEM file."""

    key: Path
    certificate: Path

    def settings(self, store: Path | None = None) -> dict[str, Any]:
        """The `celery:` settings that sign with this key, trusting the certificates of `store` (else this one's)."""
        return {
            "task_serializer": "auth",
            "accept_content": ["auth"],
            "result_accept_content": ["json"],
            "security_key": str(self.key),
            "security_certificate": str(self.certificate),
            "security_cert_store": str(store or self.certificate),
        }


def write_signer(folder: Path, name: str, *, like: Path | None = None, rsa_key: bool = True) -> Signer:
    """A new key and its certificate in `folder`; `like`: with that certificate's issuer and serial (an impostor)."""
    key = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        if rsa_key
        else ec.generate_private_key(ec.SECP256R1())
    )
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name} signing")])
    issuer, serial = subject, x509.random_serial_number()
    if like is not None:
        model = x509.load_pem_x509_certificate(like.read_bytes())
        issuer, serial = model.issuer, model.serial_number
    now = datetime.datetime.now(datetime.UTC)
    builder = x509.CertificateBuilder(issuer_name=issuer, subject_name=subject, serial_number=serial)
    builder = builder.public_key(key.public_key()).not_valid_before(now - DAY).not_valid_after(now + DAY)
    signer = Signer(folder / f"{name}-key.pem", folder / f"{name}-cert.pem")
    pem = serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    signer.key.write_bytes(key.private_bytes(serialization.Encoding.PEM, *pem))
    signer.key.chmod(0o600)
    signer.certificate.write_bytes(builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM))
    return signer


@contextmanager
def kombu_serializers_kept() -> Iterator[None]:
    """Inside, an app may call setup_security(); after, kombu's registry (one a process) is as it was.

    setup_security() registers `auth`, makes it kombu's default serializer and disables
    every other decoder of the process, not only of the app that asks.
    """
    saved = {name: value.copy() if hasattr(value, "copy") else value for name, value in vars(registry).items()}
    try:
        yield
    finally:
        vars(registry).update(saved)
