"""HTTPS served by Sentinel itself, as the temBoard UI requires of its
agents: a certificate given, or one made once in the state directory."""

import http.client
import json
import re
import ssl

import pytest

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
