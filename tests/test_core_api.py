"""The core agent API: login, logout, discover, profile, notifications, status,
and the error contract every route shares. Runs on SQLite and on PostgreSQL state."""

import re

import pytest

HEX64 = re.compile(r"[0-9a-f]{64}")


@pytest.fixture(params=["sqlite", "postgres"])
def state_url(request):
    return request.getfixturevalue(f"{request.param}_state")


# -- /login -----------------------------------------------------------------


def test_login_returns_a_64_hex_session(client, make_user):
    make_user("alice", "alice-password")
    answer = client.post("/login", json={"username": "alice", "password": "alice-password"})
    assert answer.status_code == 200
    assert set(answer.get_json()) == {"session"}
    assert HEX64.fullmatch(answer.get_json()["session"])


def test_login_ignores_content_type_like_the_agent(client, make_user):
    make_user("alice", "alice-password")
    answer = client.post(
        "/login",
        data='{"username": "alice", "password": "alice-password"}',
        content_type="text/plain",
    )
    assert answer.status_code == 200


@pytest.mark.parametrize(
    "username, password",
    [("alice", "wrong-password"), ("nobody", "alice-password")],
    ids=["wrong password", "unknown user"],
)
def test_wrong_credentials_are_404(client, make_user, username, password):
    make_user("alice", "alice-password")
    answer = client.post("/login", json={"username": username, "password": password})
    assert answer.status_code == 404
    assert answer.get_json() == {"error": "Invalid username/password."}


@pytest.mark.parametrize(
    "body, parameter",
    [
        ({"password": "alice-password"}, "username"),
        ({"username": "alice"}, "password"),
        ({"username": "Alice!", "password": "alice-password"}, "username"),
        ({"username": "al", "password": "alice-password"}, "username"),
        ({"username": 12345, "password": "alice-password"}, "username"),
        ({"username": "alice", "password": "abc"}, "password"),
        ({"username": "alice", "password": ["alice-password"]}, "password"),
        ([], "username"),
        ("alice", "username"),
    ],
)
def test_malformed_login_is_406_naming_the_parameter(client, body, parameter):
    answer = client.post("/login", json=body)
    assert answer.status_code == 406
    assert answer.get_json() == {"error": f"Parameter '{parameter}' is malformed."}


@pytest.mark.parametrize("raw", ["", "{", "not json", '{"username": "alice",}'])
def test_bad_json_is_400(client, raw):
    answer = client.post("/login", data=raw)
    assert answer.status_code == 400
    assert answer.get_json() == {"error": "Invalid json format"}


def test_body_over_the_limit_is_413(client):
    answer = client.post("/login", data="x" * (1024 * 1024 + 1))
    assert answer.status_code == 413
    assert answer.get_json() == {"error": "Request body too large."}


def test_a_second_login_keeps_the_first_session(client, auth):
    first = auth.login()
    second = auth.login(create=False)
    assert first != second
    for session in (first, second):
        assert client.get("/profile", headers={"X-Session": session}).status_code == 200


# -- X-Session ----------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Session": "abc"},
        {"X-Session": "a" * 63},
        {"X-Session": "a" * 65},
        {"X-Session": "A" * 64},
    ],
    ids=["absent", "short", "63 chars", "65 chars", "uppercase"],
)
@pytest.mark.parametrize("path", ["/profile", "/logout", "/notifications"])
def test_malformed_session_is_406(client, path, headers):
    answer = client.get(path, headers=headers)
    assert answer.status_code == 406
    assert answer.get_json() == {"error": "Parameter 'X-Session' is malformed."}


@pytest.mark.parametrize("path", ["/profile", "/logout", "/notifications"])
def test_unknown_session_is_401(client, path):
    answer = client.get(path, headers={"X-Session": "ab" * 32})
    assert answer.status_code == 401
    assert answer.get_json() == {"error": "Invalid session."}


# -- /logout, /profile ----------------------------------------------------------


def test_logout_ends_the_session(client, auth):
    session = auth.login()
    answer = client.get("/logout", headers={"X-Session": session})
    assert answer.status_code == 200
    assert answer.get_json() == {"logout": True}
    again = client.get("/profile", headers={"X-Session": session})
    assert again.status_code == 401
    assert again.get_json() == {"error": "Invalid session."}


def test_profile_names_the_signed_in_user(client, auth):
    headers = auth.headers(username="bob", password="bob-password")
    answer = client.get("/profile", headers=headers)
    assert answer.status_code == 200
    assert answer.get_json() == {"username": "bob"}


# -- /notifications ---------------------------------------------------------------


def test_notifications_record_login_and_logout_newest_first(client, auth):
    session = auth.login()
    client.get("/logout", headers={"X-Session": session})
    headers = auth.headers(create=False)
    items = client.get("/notifications", headers=headers).get_json()
    assert [item["message"] for item in items] == ["Login", "Logout", "Login"]
    assert all(item["username"] == "alice" for item in items)
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", item["date"]) for item in items)
    assert set(items[0]) == {"date", "username", "message"}


def test_failed_logins_are_not_notifications(client, auth):
    client.post("/login", json={"username": "alice", "password": "wrong-password"})
    headers = auth.headers()
    messages = [item["message"] for item in client.get("/notifications", headers=headers).json]
    assert messages == ["Login"]


def test_agent_key_reads_notifications_without_a_session(tmp_path, settings, make_user):
    from sentinel import create_app

    app = create_app({**settings, "agent_key": "s3cret-key"})
    client = app.test_client()
    assert client.get("/notifications?key=s3cret-key").status_code == 200
    answer = client.get("/notifications", headers={"X-TemBoard-Agent-Key": "s3cret-key"})
    assert answer.status_code == 200
    wrong = client.get("/notifications?key=wrong")
    assert wrong.status_code == 401
    assert wrong.get_json() == {"error": "Invalid key"}


def test_agent_key_does_not_open_session_routes(tmp_path, settings):
    from sentinel import create_app

    client = create_app({**settings, "agent_key": "s3cret-key"}).test_client()
    answer = client.get("/profile?key=s3cret-key")
    assert answer.status_code == 406
    assert answer.get_json() == {"error": "Parameter 'X-Session' is malformed."}


def test_a_key_is_refused_when_none_is_configured(client):
    answer = client.get("/notifications?key=anything")
    assert answer.status_code == 401
    assert answer.get_json() == {"error": "Invalid key"}


# -- /discover, /status -------------------------------------------------------------


def test_discover_describes_the_instance_without_a_session(client, pg_cluster):
    facts = client.get("/discover").get_json()
    assert facts["hostname"] == "sentinel.test"
    assert facts["pg_port"] == pg_cluster.port
    assert facts["pg_data"] == str(pg_cluster.data)
    assert facts["pg_version"].startswith("PostgreSQL 15.")
    assert re.fullmatch(r"PostgreSQL 15\.\d+", facts["pg_version_summary"])
    assert facts["pg_block_size"] == 8192
    assert isinstance(facts["cpu"], int) and facts["cpu"] >= 1
    assert isinstance(facts["memory_size"], int) and facts["memory_size"] > 0
    assert facts["plugins"] == [
        "activity",
        "administration",
        "dashboard",
        "maintenance",
        "monitoring",
        "pgconf",
        "statements",
    ]


def test_status_describes_the_service(client):
    status = client.get("/status").get_json()
    assert set(status) == {
        "pid",
        "user",
        "start_datetime",
        "reload_datetime",
        "configfile",
        "version",
        "redis",
    }
    assert status["redis"] == "available"
    assert isinstance(status["pid"], int)
    assert status["configfile"] == "/nonexistent/sentinel.conf"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", status["start_datetime"])


# -- the error contract ---------------------------------------------------------------


@pytest.mark.parametrize("path", ["/nope", "/profile/", "/activity/", "/login/x"])
def test_unknown_routes_are_json_404(client, path):
    answer = client.get(path)
    assert answer.status_code == 404
    assert answer.get_json() == {"error": "URL not found."}


def test_wrong_method_is_json_405(client):
    answer = client.post("/profile")
    assert answer.status_code == 405
    assert answer.get_json() == {"error": "Method not allowed."}
    assert "GET" in answer.headers["Allow"]


def test_a_bug_is_a_500_without_details(app, client, caplog):
    @app.get("/boom")
    def boom():
        raise RuntimeError("secret internals")

    answer = client.get("/boom")
    assert answer.status_code == 500
    assert answer.get_json() == {"error": "Internal error."}
    assert "secret internals" not in answer.get_data(as_text=True)
    assert "secret internals" in caplog.text
