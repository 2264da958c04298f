"""pgwatch's `GET /log`: Sentinel's log lines, live, over a WebSocket, against
the real gunicorn and a real Redis. Lines logged by any process reach every
stream; a client that stops reading slows no one and loses only its own
lines; a process serves a bounded number of streams; a stop does not wait on
an open stream; a Redis outage ends the streams cleanly and nothing else.

The module's service serves HTTPS (gunicorn's own TLS, as the temBoard UI
wants its agents): the harder case, where a stream reads and writes one TLS
connection without ever waiting on it. Those of their own serve HTTP."""

import base64
import logging
import os
import socket
import statistics
import struct
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import uuid
from collections import deque

import pytest
import redis
from conftest import app_of
from polling import wait_for
from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    CloseConnection,
    Ping,
    RejectConnection,
    Request,
    TextMessage,
)

from sentinel import logs
from sentinel.auth import accounts, sessions
from sentinel.dev import sandbox
from sentinel.pool import logstream

# Another process logging lines fast, like Sentinel's do (through the
# publisher a Sentinel application attaches), once told to go.
# argv: Redis URL, how many lines, what pads each.
FLOOD = """
import logging, sys
from sentinel import logs
from sentinel.pool.logstream import Publisher
logs.attach(Publisher(sys.argv[1]), "text")
log = logging.getLogger("sentinel.elsewhere")
log.setLevel("INFO")
print("ready", flush=True)
sys.stdin.readline()
for n in range(int(sys.argv[2])):
    log.info("event=flood n=%s padding=%s", n, sys.argv[3])
"""


@pytest.fixture(scope="module")
def service(tmp_path_factory, pg_cluster, redis_server):
    """This module's gunicorn-served Sentinel: conftest's, over its own TLS
    (a self-signed certificate)."""
    state_dir = tmp_path_factory.mktemp("tls-service-state")
    env = {
        **os.environ,
        "SENTINEL_STATE_DIR": str(state_dir),
        "SENTINEL_PG_DSN": pg_cluster.dsn(),
        "SENTINEL_REDIS_URL": redis_server.url,
        "SENTINEL_HOSTNAME": "sentinel.test",
        "SENTINEL_TLS": "self-signed",
    }
    service = sandbox.Service(env, log=state_dir / "gunicorn.log").start()
    yield service
    service.stop()


def log_here(service, event):
    """Log a line `event=<event>` from the test's own process (not one of the
    service's), through the publisher a Sentinel application attaches."""
    logs.attach(logstream.Publisher(service.env["SENTINEL_REDIS_URL"]), "text")
    logging.getLogger("sentinel.elsewhere").warning("event=%s", event)


def make_token(service, role="admin"):
    """An API token of a new user of the running service."""
    name = "u" + uuid.uuid4().hex[:10]
    with app_of(service) as app, app.app_context():
        accounts.create_user(name, "user-password", role)
        return sessions.create_token(accounts.get_user(name), "log stream")


class ConnectionClosed(Exception):
    """The server closed the stream: its close code (`reason`) and message."""

    def __init__(self, reason, message):
        super().__init__(reason, message)
        self.reason = reason
        self.message = message


class Client:
    """A WebSocket client as a browser is one: it answers pings, here while
    the test waits in receive()."""

    def __init__(self, url, ssl_context=None):
        parts = urllib.parse.urlsplit(url)
        self.sock = socket.create_connection((parts.hostname, parts.port), timeout=10)
        if ssl_context is not None:
            self.sock = ssl_context.wrap_socket(self.sock)
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.texts = deque()
        self.partial = ""
        self.closed = None
        self.sock.sendall(
            self.ws.send(Request(host=parts.netloc, target=f"{parts.path}?{parts.query}"))
        )
        while self.ws.state is ConnectionState.CONNECTING:
            self.ws.receive_data(receive_some(self.sock))
            for event in self.ws.events():
                assert not isinstance(event, RejectConnection), event
                assert isinstance(event, AcceptConnection), event
                break

    def receive(self, timeout):
        """The next text message, or None after `timeout` s without one."""
        deadline = time.monotonic() + timeout
        while not self.texts:
            if self.closed is not None:
                self.sock.close()  # as WebSocket clients do once closed
                raise self.closed
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            self.sock.settimeout(remaining)
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                return None
            if not data:
                self.closed = ConnectionClosed(1006, "the connection ended without a close")
                continue
            self.ws.receive_data(data)
            for event in self.ws.events():
                self.handle(event)
        return self.texts.popleft()

    def handle(self, event):
        if isinstance(event, TextMessage):
            self.partial += event.data
            if event.message_finished:
                self.texts.append(self.partial)
                self.partial = ""
        elif isinstance(event, Ping):
            self.sock.sendall(self.ws.send(event.response()))
        elif isinstance(event, CloseConnection):
            if self.ws.state is ConnectionState.REMOTE_CLOSING:
                self.sock.sendall(self.ws.send(event.response()))
            self.closed = ConnectionClosed(event.code, event.reason)

    def close(self):
        try:
            if self.ws.state is ConnectionState.OPEN:
                self.sock.sendall(self.ws.send(CloseConnection(code=1000)))
        except OSError:
            pass
        finally:
            self.sock.close()


def receive_some(sock):
    data = sock.recv(65536)
    assert data, "the server closed the connection"
    return data


def open_stream(service, token):
    scheme = "wss" if service.ssl_context() else "ws"
    url = f"{scheme}://127.0.0.1:{service.port}/log?Token={token}"
    return Client(url, ssl_context=service.ssl_context())


def close_stream(stream):
    stream.close()


def lines_until(stream, wanted, act=None, timeout=15):
    """The first line the stream receives holding `wanted`; `act()` is
    called again every 0.3 s meanwhile (e.g. the request that logs it)."""
    deadline = time.monotonic() + timeout
    next_act = 0.0
    while time.monotonic() < deadline:
        if act is not None and time.monotonic() >= next_act:
            act()
            next_act = time.monotonic() + 0.3
        line = stream.receive(timeout=0.1)
        if line is not None and wanted in line:
            return line
    raise AssertionError(f"no line with {wanted!r} within {timeout} s")


def handshake(service, token, receive_buffer=None):
    """A WebSocket handshake on a raw socket: (status, head and body, socket)."""
    sock = socket.socket()
    if receive_buffer:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.settimeout(10)
    sock.connect(("127.0.0.1", service.port))
    if service.ssl_context():
        sock = service.ssl_context().wrap_socket(sock)
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET /log?Token={token} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    sock.sendall(request.encode())
    received = b""
    while not received.endswith(b"\r\n\r\n"):  # a byte at a time: frames follow a 101
        chunk = sock.recv(1)
        assert chunk, received
        received += chunk
    status = int(received.split(b" ", 2)[1])
    if status != 101:
        length = int(received.lower().split(b"content-length:")[1].split(b"\r\n")[0])
        received += receive_exactly(sock, length)
    return status, received.decode(errors="replace"), sock


def receive_exactly(sock, size):
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        assert chunk, "the server closed the connection"
        data += chunk
    return data


def read_frame(sock):
    """(opcode, payload) of the server's next frame (never masked nor compressed)."""
    first, second = receive_exactly(sock, 2)
    size = second & 0x7F
    if size == 126:
        (size,) = struct.unpack("!H", receive_exactly(sock, 2))
    elif size == 127:
        (size,) = struct.unpack("!Q", receive_exactly(sock, 8))
    return first & 0x0F, receive_exactly(sock, size)


def status_took(service):
    started = time.monotonic()
    with urllib.request.urlopen(
        service.url + "/status", timeout=30, context=service.ssl_context()
    ) as answer:
        assert answer.status == 200
    return time.monotonic() - started


def failed_login(service, username):
    request = urllib.request.Request(
        service.url + "/login",
        data=f'{{"username": "{username}", "password": "wrong-password"}}'.encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        urllib.request.urlopen(request, timeout=10, context=service.ssl_context())
    except urllib.error.HTTPError as error:
        return error.code
    raise AssertionError("a wrong password was accepted")


# -- through the test client: the route as described -----------------------------------


def test_the_stream_is_described_as_a_websocket_behind_the_token(client):
    described = client.get("/openapi.json").get_json()["paths"]["/log"]["get"]
    assert "101" in described["responses"]
    assert {"400", "401", "403", "503"} <= set(described["responses"])
    assert {"tokenQuery": []} in described["security"]


def test_a_plain_get_without_the_upgrade_is_refused_in_words(client, make_token):
    answer = client.get("/log", headers={"Token": make_token()})
    assert (answer.status_code, answer.mimetype) == (400, "text/plain")
    assert "WebSocket" in answer.get_data(as_text=True)


def test_a_viewer_may_not_read_the_log(client, make_token):
    answer = client.get("/log", headers={"Token": make_token("watcher", role="viewer")})
    assert answer.status_code == 403


def test_nothing_is_published_while_no_stream_listens(redis_url):
    connection = redis.Redis.from_url(redis_url)
    connection.config_resetstat()
    publisher = logstream.Publisher(redis_url)
    try:
        for n in range(100):
            publisher.handle(logging.makeLogRecord({"msg": "event=test n=%s", "args": (n,)}))
        calls = connection.info("commandstats")
    finally:
        publisher.close()
        connection.close()
    assert "cmdstat_publish" not in calls
    assert calls["cmdstat_pubsub|numsub"]["calls"] == 1  # asked once a second at most


def test_logging_stays_fast_when_redis_is_down():
    publisher = logstream.Publisher(f"redis://127.0.0.1:{sandbox.free_port()}/0")
    record = logging.makeLogRecord({"msg": "event=test"})
    try:
        started = time.monotonic()
        for _ in range(1000):
            publisher.handle(record)
        took = time.monotonic() - started
    finally:
        publisher.close()
    assert took < 0.2, f"1000 lines took {took:.3f} s with Redis down"


# -- against the real service ---------------------------------------------------------------


def test_a_failed_login_is_streamed_from_whichever_worker_logs_it(service):
    marker = "m" + uuid.uuid4().hex[:12]
    stream = open_stream(service, make_token(service))
    try:
        line = lines_until(stream, marker, act=lambda: failed_login(service, marker))
    finally:
        close_stream(stream)
    assert "event=login_failed" in line or "event=login_throttled" in line


def test_a_line_logged_by_another_process_is_streamed(service):
    stream = open_stream(service, make_token(service))
    try:
        log_here(service, "from_elsewhere")
        line = lines_until(stream, "event=from_elsewhere")
    finally:
        close_stream(stream)
    assert line.endswith(" level=WARNING logger=sentinel.elsewhere event=from_elsewhere")


@pytest.mark.parametrize("token", ["", "snt_" + "x" * 43, "0" * 64])
def test_a_handshake_without_a_valid_token_is_refused(service, token):
    status, answer, sock = handshake(service, token)
    sock.close()
    assert status == 401, answer


def test_a_client_that_stops_reading_slows_no_one_and_loses_only_its_lines(service):
    token = make_token(service)
    reader = open_stream(service, token)
    flood = subprocess.Popen(
        [sys.executable, "-c", FLOOD, service.env["SENTINEL_REDIS_URL"], "2000", "x" * 400],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    stalled = None
    try:
        log_here(service, "warm_up")
        lines_until(reader, "event=warm_up")
        before = [status_took(service) for _ in range(10)]
        assert flood.stdout.readline() == b"ready\n"
        # Opened last: Sentinel drops a client that answers no ping for 30 s.
        status, _, stalled = handshake(service, token, receive_buffer=4096)
        assert status == 101

        flood.stdin.write(b"go\n")
        flood.stdin.flush()
        during = []
        while flood.poll() is None or not during:
            during.append(status_took(service))
        assert flood.wait() == 0

        # The client that stopped reading was not dropped: it is told what it lost.
        while True:
            opcode, payload = read_frame(stalled)
            if opcode == 1 and b"event=log_lines_dropped" in payload:
                break
        # The one that kept reading gets what is logged next.
        lines_until(reader, "event=after_flood", act=lambda: log_here(service, "after_flood"))
    finally:
        close_stream(reader)
        if stalled is not None:
            stalled.close()
        if flood.poll() is None:
            flood.kill()
        flood.wait()
        flood.stdin.close()
        flood.stdout.close()
    figures = (
        f"GET /status before: median {statistics.median(before) * 1000:.1f} ms;"
        f" during {len(during)} calls: median {statistics.median(during) * 1000:.1f} ms,"
        f" max {max(during) * 1000:.1f} ms"
    )
    print(figures)
    assert statistics.median(during) < 0.5, figures
    assert max(during) < 2, figures
    assert int(payload.split(b"count=")[1].split()[0]) > 0


def test_a_process_serves_a_bounded_number_of_streams_and_refuses_more(service):
    token = make_token(service)
    limit = 2 * logstream.STREAMS_PER_PROCESS  # two gunicorn workers
    streams, refusals = [], []
    try:
        # Each connection goes to whichever worker takes it: one may be full
        # first (or still closing a stream of an earlier test).
        while len(streams) < limit and len(refusals) < 20:
            status, answer, sock = handshake(service, token)
            if status == 101:
                streams.append(sock)
            else:
                sock.close()
                refusals.append((status, answer))
                time.sleep(0.2)
        assert len(streams) == limit
        status, answer, sock = handshake(service, token)
        sock.close()
        assert status == 503, answer
        assert "Retry-After: 10" in answer
        assert f"already streams its log to {logstream.STREAMS_PER_PROCESS} clients" in answer
        assert all(status == 503 for status, _ in refusals), refusals
        # The threads the streams leave answer everything else.
        assert status_took(service) < 2

        streams.pop().close()
        streams.append(wait_for(lambda: accepted(service, token), 10, 0.2, what="a free slot"))
    finally:
        for sock in streams:
            sock.close()


def accepted(service, token):
    """A stream's socket, or None when the handshake is refused."""
    status, _, sock = handshake(service, token)
    if status == 101:
        return sock
    sock.close()
    return None


def test_a_stop_closes_open_streams_instead_of_waiting_for_them(serve):
    service = serve()
    stream = open_stream(service, make_token(service))
    started = time.monotonic()
    service.stop()
    took = time.monotonic() - started
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            stream.receive(timeout=5)
    assert took < 10, f"the stop took {took:.1f} s"  # the graceful timeout is 30 s
    assert closed.value.reason == 1001
    assert "stopping" in closed.value.message


def test_a_redis_outage_ends_the_streams_and_nothing_else(serve, tmp_path):
    redis_server = sandbox.RedisServer().start()
    try:
        service = serve(SENTINEL_REDIS_URL=redis_server.url)
        token = make_token(service)
        stream = open_stream(service, token)
        log_here(service, "before_outage")
        lines_until(stream, "event=before_outage")

        redis_server.stop()
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                stream.receive(timeout=10)
        assert closed.value.reason == 1011
        assert "Redis is unavailable" in closed.value.message

        status, answer, sock = handshake(service, token)
        sock.close()
        assert status == 503, answer
        assert "Redis is unavailable" in answer
        # Everything else logs and answers as before.
        marker = "m" + uuid.uuid4().hex[:12]
        assert failed_login(service, marker) == 404  # temBoard's answer to a failed login
        wait_for(
            lambda: f"event=login_failed username={marker}" in service.log_path.read_text(),
            10,
            what="the failed login in the service's log",
        )
    finally:
        redis_server.stop()
