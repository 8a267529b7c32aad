"""The deployment's own certificate authority, so the egress proxy can read HTTPS requests.

Enforcing `network.methods` on HTTPS means decrypting it: the proxy answers a CONNECT with a
certificate for the requested host, signed by this CA, whose certificate the sandbox trusts.
The CA key stays on the worker's host (mode 0600) and never enters a container; leaf
certificates are made on demand, share one in-memory key, and are cached per host.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
import tempfile
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

KEY_FILE = "ca-key.pem"
CERT_FILE = "ca-cert.pem"
CA_VALIDITY = datetime.timedelta(days=3650)
LEAF_VALIDITY = datetime.timedelta(days=90)
LEAF_CACHE_SIZE = 256
_SKEW = datetime.timedelta(hours=1)
"""Backdating, so a sandbox whose clock is slightly behind still accepts a fresh certificate."""


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _create(directory: Path) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "codex-app"),
            x509.NameAttribute(NameOID.COMMON_NAME, "codex-app sandbox egress CA"),
        ]
    )
    now = _now()
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _SKEW)
        .not_valid_after(now + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    # O_EXCL: never overwrite a key; 0600 from the first byte, not chmod after the fact.
    descriptor = os.open(directory / KEY_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as out:
        out.write(_pem_key(key))
    (directory / CERT_FILE).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key, cert


def _load(directory: Path) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = serialization.load_pem_private_key((directory / KEY_FILE).read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{directory / KEY_FILE}: expected an EC key, got {type(key).__name__}")
    cert = x509.load_pem_x509_certificate((directory / CERT_FILE).read_bytes())
    return key, cert


@dataclass
class CertificateAuthority:
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate
    _leaf_key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1()), repr=False
    )
    _leaves: OrderedDict[str, tuple[ssl.SSLContext, datetime.datetime]] = field(
        default_factory=OrderedDict, repr=False
    )

    @classmethod
    def load_or_create(cls, directory: Path) -> CertificateAuthority:
        """The CA in `directory`, created there (key 0600) on first use and reused after."""
        present = [(directory / name).exists() for name in (KEY_FILE, CERT_FILE)]
        if all(present):
            return cls(*_load(directory))
        if any(present):
            raise ValueError(
                f"{directory} holds only one of {KEY_FILE} and {CERT_FILE}: restore the other, "
                "or remove both to create a new CA (sandboxes then trust the new one)"
            )
        return cls(*_create(directory))

    @property
    def cert_pem(self) -> bytes:
        """The CA certificate, for the sandbox's trust store (`SSL_CERT_FILE` and friends)."""
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def leaf_context(self, host: str) -> ssl.SSLContext:
        """A server-side TLS context presenting a certificate for `host` (DNS name or IP)."""
        cached = self._leaves.get(host)
        if cached is not None and cached[1] - _now() > datetime.timedelta(days=1):
            self._leaves.move_to_end(host)
            return cached[0]
        context, expires = self._issue(host)
        self._leaves[host] = (context, expires)
        self._leaves.move_to_end(host)
        while len(self._leaves) > LEAF_CACHE_SIZE:
            self._leaves.popitem(last=False)
        return context

    def _issue(self, host: str) -> tuple[ssl.SSLContext, datetime.datetime]:
        try:
            alt_name: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(host))
        except ValueError:
            alt_name = x509.DNSName(host)
        subject = [x509.NameAttribute(NameOID.COMMON_NAME, host)] if len(host) <= 64 else []
        now = _now()
        expires = min(now + LEAF_VALIDITY, self.cert.not_valid_after_utc)
        public = self._leaf_key.public_key()
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name(subject))
            .issuer_name(self.cert.subject)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _SKEW)
            .not_valid_after(expires)
            .add_extension(x509.SubjectAlternativeName([alt_name]), critical=not subject)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
            .sign(self.key, hashes.SHA256())
        )
        return _server_context(cert, self._leaf_key), expires


def _server_context(cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["http/1.1"])
    # `load_cert_chain` reads only files: a private temporary one, removed at once.
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "leaf.pem"
        path.write_bytes(_pem_key(key) + cert.public_bytes(serialization.Encoding.PEM))
        context.load_cert_chain(path)
    return context
