"""Failed logins are throttled per username and per client address, across
web workers, without Redis, and under concurrent attempts."""

import collections
import http.client
import json
import os
import threading
import uuid

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


def test_successes_do_not_count_against_the_address(client, make_user):
    # Each attempt is counted before its password is checked; a success takes it back.
    make_user()
    assert [succeed(client).status_code for _ in range(6)] == [200] * 6
    assert fail(client, username="bob").status_code == 404


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


# -- concurrent attempts against the real service (2 processes x 4 threads) --------------


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def service(request, tmp_path_factory, pg_cluster, redis_server):
    """gunicorn-served Sentinel with the default limits (5 per username, 20 per
    address), its state in SQLite or in PostgreSQL."""
    state_dir = tmp_path_factory.mktemp("throttled")
    env = {
        **os.environ,
        "SENTINEL_STATE_DIR": str(state_dir),
        "SENTINEL_PG_DSN": pg_cluster.dsn(),
        "SENTINEL_REDIS_URL": redis_server.url,
    }
    database = None
    if request.param == "postgres":
        database = f"throttled_{uuid.uuid4().hex[:8]}"
        pg_cluster.execute(f'CREATE DATABASE "{database}"')
        env["SENTINEL_DATABASE"] = pg_cluster.url(database)
    service = sandbox.Service(env, log=state_dir / "gunicorn.log").start()
    yield service
    service.stop()
    if database:
        pg_cluster.execute(f'DROP DATABASE "{database}" WITH (FORCE)')


def concurrent_logins(service, usernames, address):
    """POST /login with a wrong password for each username at once, from
    `address` (a loopback address of its own): the count of each status."""
    ready = threading.Barrier(len(usernames))
    statuses = []

    def attempt(username):
        connection = http.client.HTTPConnection(
            "127.0.0.1", service.port, timeout=60, source_address=(address, 0)
        )
        body = json.dumps({"username": username, "password": "wrong-password"})
        ready.wait()
        connection.request("POST", "/login", body, {"Content-Type": "application/json"})
        statuses.append(connection.getresponse().status)
        connection.close()

    threads = [threading.Thread(target=attempt, args=(name,)) for name in usernames]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(90)
    return collections.Counter(statuses)


def login_status(service, username, password, address):
    connection = http.client.HTTPConnection(
        "127.0.0.1", service.port, timeout=30, source_address=(address, 0)
    )
    body = json.dumps({"username": username, "password": password})
    connection.request("POST", "/login", body, {"Content-Type": "application/json"})
    status = connection.getresponse().status
    connection.close()
    return status


def test_concurrent_wrong_passwords_check_a_username_five_times_at_most(service, ui_user_factory):
    username = ui_user_factory(service)
    statuses = concurrent_logins(service, [username] * 30, "127.0.0.2")
    # 404 is a password checked and found wrong; 429 was refused before any check.
    assert statuses == {404: 5, 429: 25}
    assert login_status(service, username, "user-password", "127.0.0.2") == 429


def test_concurrent_wrong_passwords_check_an_address_twenty_times_at_most(service):
    usernames = [f"nobody{index}" for index in range(30)]
    statuses = concurrent_logins(service, usernames, "127.0.0.3")
    assert statuses == {404: 20, 429: 10}
    assert login_status(service, "someone", "some-password", "127.0.0.3") == 429
