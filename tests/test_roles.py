"""Roles: an admin changes things, a viewer reads everything and changes nothing."""

import pytest
from playwright.sync_api import expect

from sentinel.auth import accounts, sessions
from sentinel.state import User

# Routes that change nothing on the instance: signing in and out.
NOT_WRITES = {
    "/login",
    "/logout",
    "/ui/login",
    "/ui/logout",
    "/ds-api/user-token",  # Datasentinel's login
    # Connects to a source an admin registered, and changes nothing.
    "/api/postgres_databases/{id_or_name}/test_connection",
}
WRITE_METHODS = {"post", "put", "patch", "delete"}


@pytest.fixture
def viewer(auth):
    auth.login("alice")  # the first user, an admin
    return {"X-Session": auth.login("victor", "victor-password", role="viewer")}


def write_routes(client):
    paths = client.get("/openapi.json").get_json()["paths"]
    return [
        (method, path, operation)
        for path, methods in paths.items()
        for method, operation in methods.items()
        if method in WRITE_METHODS and path not in NOT_WRITES
    ]


def test_every_write_route_needs_the_admin_role(client):
    routes = write_routes(client)
    assert {path for _, path, _ in routes} >= {
        "/activity/kill",
        "/activity/cancel",
        "/administration/control",
        "/ui/activity/kill",
        "/ui/activity/cancel",
        "/ui/administration/control",
    }
    for method, path, operation in routes:
        assert "403" in operation["responses"], f"{method} {path}"
        assert operation.get("x-role") == "admin", f"{method} {path}"


def test_a_viewer_reads_everything(client, viewer):
    for path in ("/activity", "/dashboard", "/administration/pg_version", "/profile"):
        assert client.get(path, headers=viewer).status_code == 200, path


def test_a_viewer_cannot_terminate_cancel_or_control(client, viewer, pg_connections):
    conn = pg_connections()
    pid = conn.get_backend_pid()
    for path, body in (
        ("/activity/kill", {"pids": [pid]}),
        ("/activity/cancel", {"pids": [pid]}),
        ("/administration/control", {"action": "reload"}),
    ):
        answer = client.post(path, json=body, headers=viewer)
        assert answer.status_code == 403, path
        assert "admin role" in answer.get_json()["error"]
    with conn.cursor() as cursor:
        cursor.execute("SELECT 1")  # still connected: nothing was signalled
    notes = client.get("/notifications", headers=viewer).get_json()
    assert not any("terminated" in note["message"] or "reload" in note["message"] for note in notes)


def test_an_admin_made_viewer_loses_the_right_at_once(client, auth, app, pg_connections):
    headers = auth.headers()
    with app.app_context():
        accounts.set_role("alice", "viewer")
    pid = pg_connections().get_backend_pid()
    answer = client.post("/activity/kill", json={"pids": [pid]}, headers=headers)
    assert answer.status_code == 403


def test_the_first_user_is_an_admin_and_the_next_ones_viewers(app):
    with app.app_context():
        first = accounts.create_user("first", "first-password")
        second = accounts.create_user("second", "second-password")
        third = accounts.create_user("third", "third-password", "admin")
    assert (first.role, second.role, third.role) == ("admin", "viewer", "admin")


def test_an_api_token_carries_its_users_role(app):
    with app.app_context():
        accounts.create_user("first", "first-password")
        reader = accounts.create_user("reader", "reader-password")
        raw = sessions.create_token(reader, "dashboards")
        assert sessions.authenticate_token(raw).role == "viewer"
        accounts.set_role("reader", "admin")
        assert sessions.authenticate_token(raw).role == "admin"


def test_the_cli_sets_and_lists_roles(sentinel, app):
    assert (
        "(admin)"
        in sentinel("users", "create", "ann", "--password-stdin", stdin="ann-password\n").stdout
    )
    assert (
        "(viewer)"
        in sentinel("users", "create", "bob", "--password-stdin", stdin="bob-password\n").stdout
    )
    assert sentinel("users", "role", "bob", "admin").returncode == 0
    refused = sentinel("users", "role", "bob", "root")
    assert refused.returncode != 0 and "root" in refused.stderr
    listed = [line.split("\t")[:2] for line in sentinel("users", "list").stdout.splitlines()]
    assert listed == [["ann", "admin"], ["bob", "admin"]]
    with app.app_context():
        assert User.get(User.username == "bob").role == "admin"


@pytest.mark.browser
def test_the_ui_hides_what_a_viewer_cannot_do(
    page, service, ui_user_factory, sign_in, pg_connections
):
    pid = pg_connections().get_backend_pid()
    sign_in(page, ui_user_factory(service, "viewer"))
    expect(page.locator("#signed-in-role")).to_have_text("viewer")
    page.goto("/ui/activity/")
    expect(page.locator(f"#backends tr[data-pid='{pid}']")).to_be_visible()
    expect(page.get_by_role("button", name="Terminate")).to_have_count(0)
    expect(page.get_by_role("columnheader", name="Actions")).to_have_count(0)
    # The route refuses all the same, whatever the page shows.
    status = page.evaluate(
        """async (pid) => (await fetch("/ui/activity/kill", {method: "POST",
            headers: {"Content-Type": "application/json",
                      "X-CSRFToken": document.querySelector("meta[name=csrf-token]").content},
            body: JSON.stringify({pids: [pid]})})).status""",
        pid,
    )
    assert status == 403
    page.goto("/ui/administration/")
    expect(page.get_by_role("button", name="Restart PostgreSQL")).to_have_count(0)
    expect(page.get_by_text("reloading and restarting need the admin role")).to_be_visible()
