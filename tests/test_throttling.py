"""Failed logins are throttled per username and per client address, across
web workers, without Redis."""

import pytest

from sentinel import create_app
from sentinel.dev import sandbox

LIMITS = {"login_max_failures": 3, "login_max_failures_per_address": 5}


@pytest.fixture
def settings(settings):
    return {**settings, **LIMITS}


def fail(client, username="alice", address="192.0.2.1"):
    return client.post(
        "/login",
        json={"username": username, "password": "wrong-password"},
        environ_base={"REMOTE_ADDR": address},
    )


def succeed(client, address="192.0.2.1"):
    return client.post(
        "/login",
        json={"username": "alice", "password": "alice-password"},
        environ_base={"REMOTE_ADDR": address},
    )


def test_a_username_is_locked_after_repeated_failures(client, make_user):
    make_user()
    assert [fail(client).status_code for _ in range(3)] == [404, 404, 404]
    locked = fail(client)
    assert locked.status_code == 429
    assert locked.get_json() == {"error": "Too many failed login attempts, retry later."}
    assert 1 <= int(locked.headers["Retry-After"]) <= 300


def test_the_right_password_waits_out_the_lock_too(client, make_user):
    make_user()
    for _ in range(3):
        fail(client)
    assert succeed(client).status_code == 429


def test_the_lock_is_per_username(client, make_user):
    make_user()
    make_user("bob", "bob-password")
    for _ in range(3):
        fail(client)
    answer = client.post("/login", json={"username": "bob", "password": "bob-password"})
    assert answer.status_code == 200


def test_an_address_is_locked_after_failures_on_many_names(client, make_user):
    make_user()
    for name in ("carol", "dave", "erin", "frank", "grace"):
        assert fail(client, username=name).status_code == 404
    assert succeed(client).status_code == 429
    assert succeed(client, address="192.0.2.99").status_code == 200


def test_a_success_forgives_earlier_failures(client, make_user):
    make_user()
    fail(client)
    fail(client)
    assert succeed(client).status_code == 200
    assert [fail(client).status_code for _ in range(3)] == [404, 404, 404]


def test_workers_share_the_count(settings, make_user):
    # Two app instances on one state database, like two gunicorn workers.
    make_user()
    first = create_app(settings).test_client()
    second = create_app(settings).test_client()
    fail(first)
    fail(second)
    fail(first)
    assert succeed(second).status_code == 429


def test_login_and_throttling_work_while_redis_is_down(settings, make_user):
    make_user()
    redis_server = sandbox.RedisServer().start()
    client = create_app({**settings, "redis_url": redis_server.url}).test_client()
    redis_server.stop()
    assert fail(client).status_code == 404
    assert succeed(client).status_code == 200
    for _ in range(3):
        fail(client)
    assert fail(client).status_code == 429


def test_malformed_attempts_are_refused_before_throttling(client, make_user):
    make_user()
    for _ in range(3):
        fail(client)
    answer = client.post("/login", json={"username": "alice"})
    assert answer.status_code == 406
