"""Clients that start a request and never finish it, served by Sentinel itself
(no nginx in front): each is dropped after SENTINEL_CLIENT_TIMEOUT, so
together they delay the API for a bounded time instead of freezing it (with
2 workers of 4 threads, 8 such clients used to hold /status for as long as
they stayed open). Over plain HTTP and over gunicorn's own TLS; each dropped
client is one log line, never a traceback."""

import concurrent.futures
import http.client
import json
import selectors
import socket
import ssl
import time

import pytest

# SENTINEL_CLIENT_TIMEOUT for these services: the default 10 s takes no less
# code, and three times as long to wait out.
CLIENT_TIMEOUT = 3
THREADS = 4  # per gunicorn worker

PARTIAL_HEADERS = b"GET /status HTTP/1.1\r\nHost: sentinel\r\nAccept: */*\r\n"
BODY = b'{"username": "alice", "password": "not-the-password"}'
PARTIAL_BODY = (
    b"POST /login HTTP/1.1\r\nHost: sentinel\r\nContent-Type: application/json\r\n"
    + f"Content-Length: {len(BODY)}\r\n\r\n".encode()
    + BODY[:20]
)


def stalled(service, first_bytes, count):
    """`count` connections that sent `first_bytes` and then nothing more."""
    clients = []
    for _ in range(count):
        client = socket.create_connection(("127.0.0.1", service.port), timeout=5)
        client.sendall(first_bytes)
        clients.append(client)
    return clients


def half_a_client_hello():
    """The first half of a real TLS ClientHello: the handshake never completes."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ssl.create_default_context().wrap_bio(incoming, outgoing, server_hostname="sentinel")
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    hello = outgoing.read()
    return hello[: len(hello) // 2]


def status_took(service, timeout):
    """Seconds GET /status took on a fresh connection (any worker may take it)."""
    started = time.monotonic()
    if service.ssl_context():
        connection = http.client.HTTPSConnection(
            "127.0.0.1", service.port, timeout=timeout, context=service.ssl_context()
        )
    else:
        connection = http.client.HTTPConnection("127.0.0.1", service.port, timeout=timeout)
    try:
        connection.request("GET", "/status")
        answer = connection.getresponse()
        assert answer.status == 200 and json.loads(answer.read())["version"]
    finally:
        connection.close()
    return time.monotonic() - started


def statuses_took(service, timeout, count=8):
    """`count` GET /status at once, so that both workers get some."""
    with concurrent.futures.ThreadPoolExecutor(count) as pool:
        calls = [pool.submit(status_took, service, timeout) for _ in range(count)]
        return [call.result() for call in calls]


def left_open(clients, timeout):
    """The clients the server has not closed within `timeout` s. Each one it
    closes is closed on this side at once, as a client does: gunicorn waits up
    to 2 s, in the worker's main loop, for a peer to close its side too."""
    waiting = selectors.DefaultSelector()
    for client in clients:
        client.setblocking(False)
        waiting.register(client, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    try:
        while waiting.get_map() and time.monotonic() < deadline:
            for key, _ in waiting.select(deadline - time.monotonic()):
                try:
                    closed = not key.fileobj.recv(4096)  # what it said first, then EOF
                except ConnectionResetError:
                    closed = True
                if closed:
                    waiting.unregister(key.fileobj)
                    key.fileobj.close()
        return [key.fileobj for key in waiting.get_map().values()]
    finally:
        waiting.close()


def worst_delay(holds):
    """How long slow clients holding threads for `holds` seconds can delay a
    request, whatever the worker each lands on: in the worst case all on one
    worker, whose threads take them in turns."""
    return sum(holds) / THREADS + max(holds) + 3


def assert_dropped_in_time(service, slow, log):
    """/status, asked for while the `slow` clients stall, is answered within
    the worst delay they can cause, and every one of them is dropped."""
    bound = worst_delay([CLIENT_TIMEOUT] * len(slow))
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        watching = pool.submit(left_open, slow, bound)
        took = statuses_took(service, timeout=bound)
        still_open = watching.result()
    assert max(took) < bound, f"/status took {max(took):.1f} s\n{log.read_text()[-3000:]}"
    assert not still_open, f"{len(still_open)} slow clients still connected after {bound} s"


def assert_each_dropped_client_is_one_line(log, count):
    text = log.read_text()
    assert "Traceback" not in text, text[-3000:]
    assert text.count("event=client_timed_out") == count, text[-3000:]


def test_clients_stalling_in_their_headers_delay_the_api_a_bounded_time(serve, tmp_path):
    service = serve(SENTINEL_CLIENT_TIMEOUT=str(CLIENT_TIMEOUT))
    slow = stalled(service, PARTIAL_HEADERS, 8)
    try:
        assert_dropped_in_time(service, slow, tmp_path / "web.log")
        # Once they are gone, the API answers at once again.
        assert status_took(service, timeout=5) < 1
    finally:
        for client in slow:
            client.close()
    assert_each_dropped_client_is_one_line(tmp_path / "web.log", 8)


def test_clients_stalling_in_their_body_delay_the_api_a_bounded_time(serve, tmp_path):
    service = serve(SENTINEL_CLIENT_TIMEOUT=str(CLIENT_TIMEOUT))
    slow = stalled(service, PARTIAL_BODY, 8)
    try:
        assert_dropped_in_time(service, slow, tmp_path / "web.log")
        assert status_took(service, timeout=5) < 1
    finally:
        for client in slow:
            client.close()
    # Each is answered 400 (werkzeug's ClientDisconnected), nothing logged.
    assert_each_dropped_client_is_one_line(tmp_path / "web.log", 0)


def test_clients_stalling_in_the_tls_handshake_delay_the_api_a_bounded_time(serve, tmp_path):
    service = serve(SENTINEL_TLS="self-signed", SENTINEL_CLIENT_TIMEOUT=str(CLIENT_TIMEOUT))
    slow = stalled(service, half_a_client_hello(), 8)
    try:
        assert_dropped_in_time(service, slow, tmp_path / "web.log")
    finally:
        for client in slow:
            client.close()
    assert_each_dropped_client_is_one_line(tmp_path / "web.log", 8)


def test_a_client_pausing_less_than_the_timeout_is_answered(serve):
    service = serve(SENTINEL_CLIENT_TIMEOUT=str(CLIENT_TIMEOUT))
    with socket.create_connection(("127.0.0.1", service.port), timeout=10) as client:
        client.sendall(PARTIAL_BODY)
        time.sleep(CLIENT_TIMEOUT / 2)  # the pause under test
        client.sendall(BODY[20:])
        answer = client.recv(4096)
    assert answer.startswith(b"HTTP/1.1 404 "), answer
