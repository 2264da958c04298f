"""HTTPS served by Sentinel itself, as the temBoard UI requires of its
agents: a certificate given, or one made once in the state directory."""

import datetime
import http.client
import json
import re
import ssl

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from sentinel import tls


def connect(service):
    context = service.ssl_context()
    return http.client.HTTPSConnection("127.0.0.1", service.port, timeout=10, context=context)


def test_a_self_signed_certificate_is_made_once_and_served(serve, tmp_path):
    service = serve(SENTINEL_TLS="self-signed")
    certificate = tmp_path / "state" / "tls" / "cert.pem"
    first = tls.fingerprint(certificate)
    connection = connect(service)
    try:
        for _ in range(3):  # one TLS connection, kept alive
            connection.request("GET", "/status")
            answer = connection.getresponse()
            assert answer.status == 200
            assert json.loads(answer.read())["version"]
    finally:
        connection.close()
    log = (tmp_path / "web.log").read_text()
    assert f"event=tls_certificate sha256={first}" in log
    service.stop()
    serve(SENTINEL_TLS="self-signed")
    assert tls.fingerprint(certificate) == first  # kept, not made again


def test_a_given_certificate_is_served(serve, tmp_path):
    cert, key = tmp_path / "mine" / "cert.pem", tmp_path / "mine" / "key.pem"
    tls.ensure_self_signed(cert, key, "sentinel.test")
    service = serve(SENTINEL_TLS_CERT=str(cert), SENTINEL_TLS_KEY=str(key))
    connection = connect(service)
    try:
        connection.request("GET", "/status")
        assert connection.getresponse().status == 200
        assert connection.sock.getpeercert(binary_form=True) == ssl.PEM_cert_to_DER_cert(
            cert.read_text()
        )
    finally:
        connection.close()


def test_plain_http_is_refused_on_the_https_port(serve):
    service = serve(SENTINEL_TLS="self-signed")
    connection = http.client.HTTPConnection("127.0.0.1", service.port, timeout=10)
    try:
        with pytest.raises((ConnectionError, http.client.HTTPException)):
            connection.request("GET", "/status")
            connection.getresponse()
    finally:
        connection.close()


def test_the_web_ui_cookie_is_secure_over_https(serve, ui_user_factory):
    service = serve(SENTINEL_TLS="self-signed")
    username = ui_user_factory(service)
    connection = connect(service)
    try:
        connection.request("GET", "/ui/login")
        answer = connection.getresponse()
        page = answer.read().decode()
        cookie = answer.getheader("Set-Cookie").split(";")[0]
        token = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)
        body = f"username={username}&password=user-password&csrf_token={token}"
        connection.request(
            "POST",
            "/ui/login",
            body=body,
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Cookie": cookie,
                # As a browser sends it; over HTTPS the CSRF check wants it.
                "Referer": f"{service.url}/ui/login",
            },
        )
        answer = connection.getresponse()
        answer.read()
        assert answer.status == 302
        assert "Secure" in answer.getheader("Set-Cookie")
    finally:
        connection.close()


def issue_certificate(directory, hostname):
    """A throwaway CA and a certificate it issues for `hostname` only (no
    127.0.0.1 in it), as a user brings from their own PKI; returns the CA's,
    the certificate's and the key's paths."""
    now = datetime.datetime.now(datetime.UTC)

    def build(subject, issuer, public_key, signing_key, ca):
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            names = x509.SubjectAlternativeName([x509.DNSName(subject)])
            builder = builder.add_extension(names, critical=False)
        return builder.sign(signing_key, hashes.SHA256())

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = build("Test CA", "Test CA", ca_key.public_key(), ca_key, ca=True)
    leaf = build(hostname, "Test CA", key.public_key(), ca_key, ca=False)
    paths = directory / "ca.pem", directory / "cert.pem", directory / "key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


def test_a_certificate_for_the_hosts_public_name_is_served(serve, tmp_path):
    ca, certificate, key = issue_certificate(tmp_path, "db1.example.test")
    # make run waits for /status through the same check before it says it is
    # up: it required 127.0.0.1 in the certificate and stopped the service.
    service = serve(SENTINEL_TLS_CERT=str(certificate), SENTINEL_TLS_KEY=str(key))
    context = ssl.create_default_context(cafile=str(ca))
    context.check_hostname = False
    connection = http.client.HTTPSConnection("127.0.0.1", service.port, timeout=10, context=context)
    try:
        connection.request("GET", "/status")
        assert connection.getresponse().status == 200
    finally:
        connection.close()
