"""Sentinel under gunicorn: several workers, real HTTP, restarts."""

import http.client
import json


def call(service, method, path, body=None, headers=None):
    """One request on a fresh connection, so gunicorn may pick any worker."""
    connection = http.client.HTTPConnection("127.0.0.1", service.port, timeout=10)
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
