"""HTTPS without a certificate authority: a self-signed certificate made once
in the state directory (SENTINEL_TLS=self-signed), with the cryptography
library, and the fingerprint a client pins it by."""

import datetime
import ipaddress
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

VALID_FOR = datetime.timedelta(days=825)  # the longest clients still accept


def _write_private(path, data, mode):
    """Write a file only its owner may read, whole or not at all."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(temporary, path)


def ensure_self_signed(cert_path, key_path, hostname):
    """Make the certificate and its key unless both exist; returns the
    certificate's fingerprint. It names `hostname`, localhost and 127.0.0.1."""
    cert_path, key_path = Path(cert_path), Path(key_path)
    if not (cert_path.exists() and key_path.exists()):
        cert_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
        now = datetime.datetime.now(datetime.UTC)
        names = [x509.DNSName(hostname), x509.DNSName("localhost")]
        names.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + VALID_FOR)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(key, hashes.SHA256())
        )
        key_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        _write_private(key_path, key_pem, 0o600)
        _write_private(cert_path, certificate.public_bytes(serialization.Encoding.PEM), 0o644)
    return fingerprint(cert_path)


def fingerprint(cert_path):
    """The certificate's SHA-256 fingerprint, as browsers show it (AB:CD:...)."""
    certificate = x509.load_pem_x509_certificate(Path(cert_path).read_bytes())
    return certificate.fingerprint(hashes.SHA256()).hex(":").upper()
