"""Sentinel under gunicorn: several workers, real HTTP, restarts."""

import http.client
import json
import socket


def call(service, method, path, body=None, headers=None, timeout=10):
    """One request on a fresh connection, so gunicorn may pick any worker."""
    connection = http.client.HTTPConnection("127.0.0.1", service.port, timeout=timeout)
    try:
        payload = json.dumps(body) if body is not None else None
        connection.request(method, path, body=payload, headers=headers or {})
        answer = connection.getresponse()
        return answer.status, dict(answer.getheaders()), json.loads(answer.read() or b"null")
    finally:
        connection.close()


def test_a_new_user_walks_through_the_core_api(service, ui_user):
    status, _, body = call(
        service, "POST", "/login", {"username": ui_user, "password": "user-password"}
    )
    assert status == 200
    headers = {"X-Session": body["session"]}
    assert call(service, "GET", "/profile", headers=headers)[2] == {"username": ui_user}
    assert call(service, "GET", "/discover")[2]["hostname"] == "sentinel.test"
    notes = call(service, "GET", "/notifications", headers=headers)[2]
    assert notes[0]["username"] == ui_user and notes[0]["message"] == "Login"
    assert call(service, "GET", "/status")[0] == 200
    assert call(service, "GET", "/logout", headers=headers)[2] == {"logout": True}
    status, _, body = call(service, "GET", "/profile", headers=headers)
    assert (status, body) == (401, {"error": "Invalid session."})


def test_throttling_holds_across_gunicorn_workers(service, ui_user):
    wrong = {"username": ui_user, "password": "wrong-password"}
    statuses = [call(service, "POST", "/login", wrong)[0] for _ in range(5)]
    assert statuses == [404] * 5
    status, headers, body = call(service, "POST", "/login", wrong)
    assert status == 429
    assert int(headers["Retry-After"]) > 0
    assert body == {"error": "Too many failed login attempts, retry later."}


def test_a_session_survives_a_service_restart(service, ui_user):
    session = call(service, "POST", "/login", {"username": ui_user, "password": "user-password"})[2]
    service.stop()
    service.start()
    status, _, body = call(service, "GET", "/profile", headers={"X-Session": session["session"]})
    assert (status, body) == (200, {"username": ui_user})


def test_a_closed_session_stops_working_at_once_on_every_worker(service, ui_user):
    credentials = {"username": ui_user, "password": "user-password"}
    for _ in range(3):
        headers = {"X-Session": call(service, "POST", "/login", credentials)[2]["session"]}
        # Fresh connections spread over both workers: each remembers the session.
        assert {call(service, "GET", "/profile", headers=headers)[0] for _ in range(8)} == {200}
        assert call(service, "GET", "/logout", headers=headers)[0] == 200
        assert {call(service, "GET", "/profile", headers=headers)[0] for _ in range(8)} == {401}


def test_calls_back_to_back_and_pipelined_on_one_connection(service):
    with socket.create_connection(("127.0.0.1", service.port), timeout=10) as client:
        reader = client.makefile("rb")
        for _ in range(50):
            client.sendall(b"GET /status HTTP/1.1\r\nHost: sentinel\r\n\r\n")
            assert read_answer(reader)[0] == 200
        # Three requests in one write: all three answered, in order.
        client.sendall(
            b"GET /status HTTP/1.1\r\nHost: sentinel\r\n\r\n"
            b"GET /nowhere HTTP/1.1\r\nHost: sentinel\r\n\r\n"
            b"GET /status HTTP/1.1\r\nHost: sentinel\r\n\r\n"
        )
        assert [read_answer(reader)[0] for _ in range(3)] == [200, 404, 200]


def test_idle_kept_alive_connections_never_hold_up_a_new_client(service):
    # More open, quiet keep-alive connections than the service has threads
    # (2 workers x 4): each must wait in the poller, not on a thread.
    held = []
    try:
        for _ in range(12):
            connection = socket.create_connection(("127.0.0.1", service.port), timeout=10)
            connection.sendall(b"GET /status HTTP/1.1\r\nHost: sentinel\r\n\r\n")
            assert read_answer(connection.makefile("rb"))[0] == 200
            held.append(connection)
        # Held up, it would wait for a thread until keep-alive (5 s) frees one.
        assert call(service, "GET", "/status", timeout=2)[0] == 200
    finally:
        for connection in held:
            connection.close()


def read_answer(reader):
    """Status and body of one HTTP/1.1 answer read from a socket file."""
    status = int(reader.readline().split()[1])
    length = 0
    while (line := reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        if name.lower() == b"content-length":
            length = int(value)
    return status, reader.read(length)
