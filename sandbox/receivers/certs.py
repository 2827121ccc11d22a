"""Throw-away X.509 material for TLS tests: a CA, server, client, expired and wrong-host certificates.

Generated with ``cryptography`` into a temporary directory per test session; nothing here is ever committed.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

#: Passphrase of the encrypted copy of the client key (``client_key_encrypted``).
CLIENT_KEY_PASSPHRASE = "correct horse battery staple"  # noqa: S105 - a throw-away test key's passphrase


@dataclass(frozen=True)
class CertBundle:
    """Paths of the generated PEM files."""

    directory: Path
    ca_cert: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    client_key_encrypted: Path
    expired_cert: Path
    expired_key: Path
    wrong_host_cert: Path
    wrong_host_key: Path
    other_ca_cert: Path
    """A CA that signed nothing here: trusting only it makes the server certificate untrusted."""


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "airflow-provider-atlassian-qradar tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey, passphrase: str | None = None) -> None:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase.encode()) if passphrase else serialization.NoEncryption()
    )
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption))
    os.chmod(path, 0o600)


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _ca(common_name: str, now: dt.datetime) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
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
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _leaf(
    common_name: str,
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    *,
    not_before: dt.datetime,
    not_after: dt.datetime,
    dns_names: list[str],
    ip_addresses: list[str],
    usage: x509.ObjectIdentifier,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    alt_names: list[x509.GeneralName] = [x509.DNSName(name) for name in dns_names]
    alt_names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ip_addresses]
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
    )
    if alt_names:
        builder = builder.add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
    return builder.sign(ca_key, hashes.SHA256()), key


def generate_certs(directory: Path) -> CertBundle:
    """
    Generate the whole set into ``directory`` (created if missing) and return the paths.

    Server certificates name ``localhost`` and ``127.0.0.1``; the wrong-host one names only
    ``wrong-host.example.com``; the expired one ended yesterday.
    """
    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.timezone.utc)
    ca_cert, ca_key = _ca("QRadar Test CA", now)
    other_ca_cert, _ = _ca("Unrelated Test CA", now)
    valid = {"not_before": now - dt.timedelta(hours=1), "not_after": now + dt.timedelta(days=7)}
    server = _leaf(
        "qradar-ec.test",
        ca_cert,
        ca_key,
        dns_names=["localhost"],
        ip_addresses=["127.0.0.1"],
        usage=ExtendedKeyUsageOID.SERVER_AUTH,
        **valid,
    )
    client = _leaf(
        "airflow-worker.test",
        ca_cert,
        ca_key,
        dns_names=[],
        ip_addresses=[],
        usage=ExtendedKeyUsageOID.CLIENT_AUTH,
        **valid,
    )
    expired = _leaf(
        "expired.qradar-ec.test",
        ca_cert,
        ca_key,
        dns_names=["localhost"],
        ip_addresses=["127.0.0.1"],
        usage=ExtendedKeyUsageOID.SERVER_AUTH,
        not_before=now - dt.timedelta(days=10),
        not_after=now - dt.timedelta(days=1),
    )
    wrong_host = _leaf(
        "wrong-host.example.com",
        ca_cert,
        ca_key,
        dns_names=["wrong-host.example.com"],
        ip_addresses=[],
        usage=ExtendedKeyUsageOID.SERVER_AUTH,
        **valid,
    )
    bundle = CertBundle(
        directory=directory,
        ca_cert=directory / "ca.pem",
        server_cert=directory / "server.pem",
        server_key=directory / "server.key",
        client_cert=directory / "client.pem",
        client_key=directory / "client.key",
        client_key_encrypted=directory / "client-encrypted.key",
        expired_cert=directory / "expired.pem",
        expired_key=directory / "expired.key",
        wrong_host_cert=directory / "wrong-host.pem",
        wrong_host_key=directory / "wrong-host.key",
        other_ca_cert=directory / "other-ca.pem",
    )
    _write_cert(bundle.ca_cert, ca_cert)
    _write_cert(bundle.other_ca_cert, other_ca_cert)
    for cert_path, key_path, (cert, key) in (
        (bundle.server_cert, bundle.server_key, server),
        (bundle.client_cert, bundle.client_key, client),
        (bundle.expired_cert, bundle.expired_key, expired),
        (bundle.wrong_host_cert, bundle.wrong_host_key, wrong_host),
    ):
        _write_cert(cert_path, cert)
        _write_key(key_path, key)
    _write_key(bundle.client_key_encrypted, client[1], CLIENT_KEY_PASSPHRASE)
    return bundle
