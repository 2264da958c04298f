"""Hostile input against the real service (gunicorn, 2 processes): SQL in every
parameter and body field the API describes, path traversal, NUL bytes, wrong
types, oversized, deeply nested and malformed chunked bodies, lone surrogates.

Every answer is a 4xx error, in JSON wherever the route speaks JSON, never a
500 nor a traceback; and nothing changes in PostgreSQL (a canary table, the
settings, a running backend, the server itself) nor in Sentinel's state
(users, sessions, notifications)."""

import contextlib
import http.client
import json
import re
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
from pathlib import Path

import psycopg2
import pytest

PASSWORD = "hostile-password"
CANARY = "hostile_canary"
# Hostile traffic comes from an address of its own: the failed logins it makes
# must not throttle the test's own sign-ins from 127.0.0.1.
HOSTILE_ADDRESS = "127.0.0.9"

SQL = [
    "' OR '1'='1",
    f"'; DROP TABLE {CANARY}; --",
    "1; SELECT pg_terminate_backend(pid) FROM pg_stat_activity; --",
    "x'); ALTER SYSTEM SET work_mem = '1GB'; SELECT pg_reload_conf(); --",
    f"$$; DROP TABLE {CANARY}; $$",
    f'"; DROP TABLE {CANARY}; --',
    "stop' --",
]
# A JSON value of every other kind, and numbers out of every range.
WRONG_TYPES = [1, -1, 0, 1.5, 2**63, 1e308, True, None, [None], {}, [[1]], {"$ne": ""}]
ODD_TEXT = ["abc\x00def", "\x00", "\ud800", "a\udfffb", "A" * 100_000, "../../../../etc/passwd", ""]
TRAVERSALS = [
    "../../../../etc/passwd",
    "..%2f..%2f..%2f..%2fetc%2fpasswd",
    "%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "....//....//....//etc/passwd",
    "..\\..\\..\\etc\\passwd",
    "%00",
    "x%00.js",
    "sentinel.css%00.html",
    "%ED%A0%80",
    "%C0%AE%C0%AE/%C0%AE%C0%AE/etc/passwd",
]


class Answer:
    def __init__(self, status, content_type, body):
        self.status = status
        self.content_type = content_type or ""
        self.body = body

    def __repr__(self):
        return f"<{self.status} {self.content_type} {self.body[:200]!r}>"


class Caller:
    """Requests to the service through http.client, from a loopback address of
    its own, with the cookie the service last set."""

    def __init__(self, service, address="127.0.0.1"):
        self.port = service.port
        self.address = address
        self.cookie = None

    def connect(self):
        return http.client.HTTPConnection(
            "127.0.0.1", self.port, timeout=30, source_address=(self.address, 0)
        )

    def send(self, method, path, body=None, headers=None, chunks=None):
        headers = {"Accept": "application/json", **(headers or {})}
        if self.cookie:
            headers.setdefault("Cookie", self.cookie)
        connection = self.connect()
        if chunks is not None:
            connection.request(method, path, iter(chunks), headers, encode_chunked=True)
        else:
            connection.request(method, path, body, headers)
        response = connection.getresponse()
        answer = Answer(response.status, response.getheader("Content-Type"), response.read())
        cookie = response.getheader("Set-Cookie")
        if cookie:
            self.cookie = cookie.split(";")[0]
        connection.close()
        return answer

    def post_json(self, path, value, headers=None, method="POST"):
        body = value if isinstance(value, bytes) else json.dumps(value).encode()
        return self.send(
            method, path, body, {"Content-Type": "application/json", **(headers or {})}
        )


def raw_exchange(service, data, address=HOSTILE_ADDRESS):
    """Send raw bytes and read the first answer whole: its bytes. The bytes go
    from a thread, as the answer is read: a server may answer and close before
    a body it refuses is all sent."""
    with socket.create_connection(("127.0.0.1", service.port), source_address=(address, 0)) as sock:
        sock.settimeout(10)
        sender = threading.Thread(target=_send_until_closed, args=(sock, data), daemon=True)
        sender.start()
        received = b""
        while not _complete(received):
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
        sender.join(10)
    return received


def _send_until_closed(sock, data):
    with contextlib.suppress(OSError):
        sock.sendall(data)


def _complete(received):
    head, separator, body = received.partition(b"\r\n\r\n")
    length = re.search(rb"(?im)^content-length: *(\d+)", head)
    return bool(separator and length and len(body) >= int(length.group(1)))


def status_of(raw):
    return int(raw.split(b" ", 2)[1])


# pgwatch's routes answer their failures in plain text, as pgwatch does
# (POST /login too, for a body in pgwatch's shape); Sequin's in its own JSON.
PLAIN_TEXT_ERRORS = ("/login", "/source", "/metric", "/preset", "/test-connect", "/log")
SEQUIN = "/api/"


def assert_refused(answer, what, html=False, path=None):
    """A 4xx error in the route's own words (JSON `{"error": ...}` for the
    agent API, the web UI's JSON and Datasentinel; Sequin's `{"summary",
    "validation_errors"}`; pgwatch's plain text), never a 500 nor a traceback."""
    assert 400 <= answer.status < 500, f"{what}: {answer!r}"
    assert b"Traceback" not in answer.body and b"Internal error" not in answer.body, what
    assert b"root:x:0:0" not in answer.body, what
    if html:
        return
    path = path or what  # `what` starts with the path but where it says otherwise
    if path.startswith(PLAIN_TEXT_ERRORS) and answer.content_type.startswith("text/plain"):
        assert answer.body.strip(), f"{what}: {answer!r}"
        return
    assert answer.content_type.startswith("application/json"), f"{what}: {answer!r}"
    error = json.loads(answer.body)
    if path.startswith(SEQUIN):
        assert isinstance(error["summary"], str) or error["validation_errors"], what
    else:
        assert isinstance(error["error"], str), what


# -- the service, what must not change, and the test's own sign-ins -------------------------


def create_user(service):
    name = "h" + uuid.uuid4().hex[:10]
    subprocess.run(
        [sys.executable, "-m", "sentinel", "users", "create", name, "--password-stdin"],
        input=PASSWORD + "\n",
        env=service.env,
        check=True,
        capture_output=True,
        text=True,
    )
    return name


@pytest.fixture(scope="module")
def world(service, pg_cluster):
    """A canary table, a backend running a long pg_sleep, a user signed in
    through the API and through the web form (with its CSRF token)."""
    pg_cluster.execute(f"CREATE TABLE {CANARY} (id int PRIMARY KEY, value text)")
    pg_cluster.execute(f"INSERT INTO {CANARY} VALUES (1, 'one'), (2, 'two')")
    sleeper = pg_cluster.connect()
    sleeping = threading.Thread(target=_sleep, args=(sleeper,), daemon=True)
    sleeping.start()
    username = create_user(service)
    api = Caller(service)
    session = json.loads(
        api.post_json("/login", {"username": username, "password": PASSWORD}).body
    )["session"]
    web = Caller(service)
    page = web.send("GET", "/ui/login", headers={"Accept": "text/html"}).body.decode()
    token = re.search(r'<meta name="csrf-token" content="([^"]+)"', page).group(1)
    form = f"username={username}&password={PASSWORD}&csrf_token={token}"
    signed_in = web.send(
        "POST", "/ui/login", form, {"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert signed_in.status == 302
    token = subprocess.run(
        [sys.executable, "-m", "sentinel", "tokens", "create", username, "hostile"],
        env=service.env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    yield {
        "token": token,
        "session": session,
        "web": web,
        "csrf": token,
        "sleeper": sleeper.get_backend_pid(),
        "state": Path(service.env["SENTINEL_STATE_DIR"]) / "sentinel.db",
    }
    sleeper.cancel()
    sleeping.join(10)
    sleeper.close()
    pg_cluster.execute(f"DROP TABLE IF EXISTS {CANARY}")


def _sleep(conn):
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT pg_sleep(600)")
    except psycopg2.Error:
        pass  # cancelled when the module ends


def snapshot(world, pg_cluster):
    """What hostile requests must leave as it is."""
    state = sqlite3.connect(f"file:{world['state']}?mode=ro", uri=True)
    try:
        counts = {
            table: state.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("users", "session", "notification")
        }
    finally:
        state.close()
    return {
        "canary": pg_cluster.execute(f"SELECT * FROM {CANARY} ORDER BY id"),
        "settings": pg_cluster.execute("SELECT name, setting FROM pg_settings ORDER BY name"),
        "auto.conf": (pg_cluster.data / "postgresql.auto.conf").read_text(),
        "postmaster": (pg_cluster.data / "postmaster.pid").read_text().split()[0],
        "sleeper": pg_cluster.execute(
            "SELECT state, query FROM pg_stat_activity WHERE pid = %s", (world["sleeper"],)
        ),
        "state": counts,
    }


@pytest.fixture
def nothing_changes(world, pg_cluster):
    before = snapshot(world, pg_cluster)
    assert before["sleeper"] == [("active", "SELECT pg_sleep(600)")]
    yield
    assert snapshot(world, pg_cluster) == before


@pytest.fixture
def hostile(service):
    return Caller(service, HOSTILE_ADDRESS)


@pytest.fixture(scope="module")
def described(service):
    """[(method, path, operation)] of every route /openapi.json describes."""
    spec = json.loads(Caller(service).send("GET", "/openapi.json").body)
    return [
        (method.upper(), path, operation)
        for path, operations in spec["paths"].items()
        for method, operation in operations.items()
    ]


def concrete(path, operation):
    """`path` with each {parameter} given a value of its form (no object has it)."""
    uuids = {
        parameter["name"]
        for parameter in operation.get("parameters", [])
        if parameter["schema"].get("format") == "uuid"
    }
    return re.sub(
        r"\{(\w+)\}", lambda m: str(uuid.uuid4()) if m.group(1) in uuids else "nothing", path
    )


def json_bodies(described):
    """(method, path, the body's schema) of every route taking a JSON body."""
    return [
        (
            method,
            concrete(path, operation),
            operation["requestBody"]["content"]["application/json"]["schema"],
        )
        for method, path, operation in described
        if "application/json" in operation.get("requestBody", {}).get("content", {})
    ]


def credentials(world, path):
    """What signs a request in for `path`: the API's header (and an API token
    where each pool dialect's clients send it), or the web session's cookie
    and CSRF token."""
    if path.startswith("/ui/"):
        return {"Cookie": world["web"].cookie, "X-CSRFToken": world["csrf"]}
    token = world["token"]
    return {
        "X-Session": world["session"],
        "Authorization": f"Bearer {token}",
        "user-token": token,
        "Token": token,
    }


# -- the classics, on every route the API describes -----------------------------------------


def test_sql_and_odd_values_in_every_body_field_are_refused(
    hostile, world, described, nothing_changes
):
    routes = json_bodies(described)
    assert {path for _, path, _ in routes} >= {
        "/login",
        "/activity/kill",
        "/administration/control",
    }
    for method, path, schema in routes:
        fields = list(schema["properties"])
        for field in fields:
            for value in SQL + WRONG_TYPES + ODD_TEXT:
                body = {name: SQL[0] for name in fields}
                body[field] = value
                answer = hostile.post_json(path, body, credentials(world, path), method)
                assert_refused(answer, f"{path} {field}={value!r:.60}")


def test_bodies_of_the_wrong_kind_are_refused(hostile, world, described, nothing_changes):
    bodies = [
        b"",
        b"null",
        b"[1, 2]",
        b'"pids"',
        b"12",
        b"true",
        b"{pids: [1]}",
        b'{"pids": [1],}',
        b'{"pids": [NaN]}',
        b'{"action": Infinity}',
        b'{"pids": [1' + b"0" * 5000 + b"]}",
        b'{"pids": [1e400]}',
        b"\xff\xfe{\x00}\x00",
        b"\x00" * 64,
        b'{"pids": "\\u0000"}',
        b'{"\\ud800": 1}',
    ]
    for method, path, _ in json_bodies(described):
        for body in bodies:
            answer = hostile.post_json(path, body, credentials(world, path), method)
            assert_refused(answer, f"{path} {body[:40]!r}")


def test_sql_and_traversal_in_every_query_parameter_are_refused(
    hostile, world, described, nothing_changes
):
    checked = 0
    for method, path, operation in described:
        for parameter in operation.get("parameters", []):
            if parameter["in"] != "query":
                continue
            schema = parameter["schema"]
            # A search text (a string of no set form) is any text: searched for, never run.
            searched = schema.get("type") == "string" and not {"pattern", "enum"} & set(schema)
            for value in SQL + ["-1", "1e400", "NaN", "../../etc/passwd", "%00", "%ED%A0%80"]:
                query = urllib.parse.quote(value, safe="%")
                answer = hostile.send(
                    method, f"{path}?{parameter['name']}={query}", headers=credentials(world, path)
                )
                if searched and answer.status == 200:
                    assert b"Traceback" not in answer.body, f"{path}?{parameter['name']}={value}"
                else:
                    assert_refused(answer, f"{path}?{parameter['name']}={value}")
                checked += 1
    assert checked


def test_path_traversal_and_nul_bytes_in_paths_find_nothing(
    hostile, world, described, nothing_changes
):
    prefixes = {
        path.split("{")[0]
        for _, path, operation in described
        if any(parameter["in"] == "path" for parameter in operation.get("parameters", []))
    }
    assert "/static/" in prefixes
    for prefix in sorted(prefixes):
        for traversal in TRAVERSALS:
            answer = hostile.send("GET", prefix + traversal)
            assert_refused(answer, prefix + traversal)
    for _, path, _ in described:
        if "{" in path:
            continue
        for suffix in ["/../../../etc/passwd", "/%00", "/'%20OR%20'1'='1", "/%ED%A0%80"]:
            answer = hostile.send(
                "GET", path.rstrip("/") + suffix, headers=credentials(world, path)
            )
            assert_refused(answer, path + suffix)


def test_hostile_credentials_are_refused(hostile, described, nothing_changes):
    values = [*SQL, "a" * 64, "0" * 64, "g" * 64, "%00", "A" * 4000]
    secured = [
        (method, path)
        for method, path, operation in described
        if operation.get("security") and not path.startswith("/ui/")
    ]
    assert secured
    for method, path in secured:
        for value in values:
            for headers in (
                {"X-Session": value},
                {"X-TemBoard-Agent-Key": value},
                {"Cookie": f"sentinel={value}"},
            ):
                answer = hostile.send(method, path, b"{}" if method == "POST" else None, headers)
                assert_refused(answer, f"{method} {path} {headers}"[:120], path=path)
        key = urllib.parse.quote(SQL[0])
        assert_refused(hostile.send(method, f"{path}?key={key}"), f"{path}?key=")


def test_hostile_sign_in_forms_are_refused(service, hostile, nothing_changes):
    page = hostile.send("GET", "/ui/login", headers={"Accept": "text/html"}).body.decode()
    token = re.search(r'<meta name="csrf-token" content="([^"]+)"', page).group(1)
    quote = urllib.parse.quote
    for value in SQL + ["%00", "%ED%A0%80", "A" * 100_000]:
        for form in (
            f"username={quote(value)}&password={quote(value)}&csrf_token={token}",
            f"username=admin&password=whatever&csrf_token={quote(value)}",
            f"username[]=admin&password={quote(value)}&csrf_token={token}",
        ):
            answer = hostile.send(
                "POST",
                "/ui/login",
                form,
                {"Content-Type": "application/x-www-form-urlencoded", "Accept": "text/html"},
            )
            assert_refused(answer, f"/ui/login {form[:60]}", html=True)


def test_a_request_line_with_a_nul_byte_is_refused_by_the_server(service, nothing_changes):
    answer = raw_exchange(service, b"GET /status\x00 HTTP/1.1\r\nHost: x\r\n\r\n")
    assert 400 <= status_of(answer) < 500
    assert b"Traceback" not in answer


# -- bodies the server frames badly, or that are too large or too deep ------------------------


@pytest.mark.parametrize("depth", [40, 600, 900, 980, 5000, 100_000])
def test_deeply_nested_json_is_400_on_every_json_route(
    hostile, world, described, depth, nothing_changes
):
    nested = b"[" * depth + b"]" * depth
    for method, path, schema in json_bodies(described):
        field = list(schema["properties"])[0]
        for body in (nested, b'{"' + field.encode() + b'": ' + nested + b"}"):
            answer = hostile.post_json(path, body, credentials(world, path), method)
            assert answer.status == 400, f"{path} depth {depth}: {answer!r}"
            assert_refused(answer, f"{path} depth {depth}")


def test_a_lone_surrogate_in_a_password_is_400(hostile, world, nothing_changes):
    body = b'{"username": "alice", "password": "\\ud800-password"}'
    answer = hostile.post_json("/login", body)
    assert answer.status == 400
    assert json.loads(answer.body) == {
        "error": "Invalid json format: a string holds a lone surrogate"
    }


@pytest.mark.parametrize(
    "path", ["/login", "/activity/kill", "/ui/activity/kill", "/administration/control"]
)
def test_a_malformed_chunked_body_is_400(service, world, path, nothing_changes):
    headers = "".join(f"{name}: {value}\r\n" for name, value in credentials(world, path).items())
    for chunks in (
        b"zz\r\nabc\r\n0\r\n\r\n",
        b"5\r\nabcdefgh\r\n0\r\n\r\n",
        b"-1\r\n{}\r\n0\r\n\r\n",
    ):
        request = (
            f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Accept: application/json\r\n{headers}Transfer-Encoding: chunked\r\n\r\n"
        ).encode()
        answer = raw_exchange(service, request + chunks)
        assert status_of(answer) == 400, answer[:300]
        assert answer.split(b"\r\n\r\n", 1)[1].startswith(b'{"error":'), answer[:300]


def test_a_malformed_chunked_body_is_400_where_the_route_reads_no_body(service, nothing_changes):
    request = b"GET /status HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    request += b"zz\r\nabc\r\n0\r\n\r\n"
    answer = raw_exchange(service, request)
    assert status_of(answer) == 400, answer[:300]
    assert b'{"error":"Malformed request body."}' in answer


def test_a_body_over_the_limit_is_413_chunked_or_not(service, world, nothing_changes):
    body = json.dumps({"pids": [1] * 700_000}).encode()  # over 2 MiB; the limit is 1 MiB
    assert len(body) > 2 * 1024 * 1024
    head = "".join(
        f"{name}: {value}\r\n" for name, value in credentials(world, "/activity/kill").items()
    )
    head = f"POST /activity/kill HTTP/1.1\r\nHost: x\r\n{head}".encode()
    plain = head + b"Content-Length: %d\r\n\r\n" % len(body) + body
    chunks = b"".join(
        b"%x\r\n%s\r\n" % (len(piece), piece)
        for piece in (body[start : start + 65536] for start in range(0, len(body), 65536))
    )
    chunked = head + b"Transfer-Encoding: chunked\r\n\r\n" + chunks + b"0\r\n\r\n"
    for request in (plain, chunked):
        answer = raw_exchange(service, request)
        assert status_of(answer) == 413, answer[:300]
        assert answer.endswith(b'{"error":"Request body too large."}\n'), answer[:300]


def test_a_chunked_body_under_the_limit_is_read_whole(hostile, world, nothing_changes):
    body = json.dumps({"pids": [2147483647] * 50_000}).encode()  # 550 KiB
    headers = {"Content-Type": "application/json", **credentials(world, "/activity/kill")}
    pieces = [body[start : start + 4096] for start in range(0, len(body), 4096)]
    answer = hostile.send("POST", "/activity/kill", headers=headers, chunks=pieces)
    assert answer.status == 200, answer
    assert len(json.loads(answer.body)["backends"]) == 50_000


@pytest.mark.parametrize("size", [10, 300_000, 1_000_000])
@pytest.mark.parametrize("chunked", [False, True])
def test_a_body_the_route_does_not_read_leaves_the_connection_usable(service, size, chunked):
    # Unauthenticated, so the route answers without reading the body.
    connection = Caller(service, HOSTILE_ADDRESS).connect()
    body = b"x" * size
    if chunked:
        pieces = [body[start : start + 65536] for start in range(0, size, 65536)]
        connection.request("POST", "/activity/kill", iter(pieces), encode_chunked=True)
    else:
        connection.request("POST", "/activity/kill", body)
    first = connection.getresponse()
    assert first.status == 406
    assert first.getheader("Connection") == "keep-alive"
    first.read()
    connection.request("GET", "/status")
    second = connection.getresponse()
    assert second.status == 200
    assert json.loads(second.read())["pid"] > 0
    connection.close()


def test_the_suite_leaves_the_service_answering(hostile):
    started = time.monotonic()
    assert hostile.send("GET", "/status").status == 200
    assert time.monotonic() - started < 5
