"""One pool, three views: a source registered through any dialect is seen,
changed and deleted through the other two, each answering in its own shape,
with the password obfuscated everywhere and never in clear in the state file,
the logs or the notifications."""

import logging
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest

from sentinel.core import notifications
from sentinel.pool import probe, secrets, store


@pytest.fixture
def token(make_token):
    return make_token()


@pytest.fixture
def dialects(client, token):
    """A client of each dialect, each sending the token its own way."""
    return {
        "datasentinel": lambda method, path, **kw: client.open(
            "/ds-api/pool/pg-instances" + path, method=method, headers={"user-token": token}, **kw
        ),
        "pgwatch": lambda method, path, **kw: client.open(
            path, method=method, headers={"Token": token}, **kw
        ),
        "sequin": lambda method, path, **kw: client.open(
            "/api/postgres_databases" + path,
            method=method,
            headers={"Authorization": f"Bearer {token}"},
            **kw,
        ),
    }


def test_created_through_datasentinel_seen_and_changed_through_pgwatch_deleted_through_sequin(
    app, dialects, pg_cluster, caplog
):
    caplog.set_level(logging.DEBUG)
    password = pg_cluster.password
    added = dialects["datasentinel"](
        "POST",
        "/shared",
        json={
            "host": "127.0.0.1",
            "port": pg_cluster.port,
            "user": "postgres",
            "password": password,
            "tags": "team=billing,env=prod",
        },
    )
    assert added.status_code == 201, added.get_json()
    assert added.get_json() == {"status": "Connection created and connected!"}

    # pgwatch sees it, with its Go names and the password obfuscated in ConnStr.
    seen = dialects["pgwatch"]("GET", "/source/shared")
    assert seen.status_code == 200
    source = seen.get_json()
    assert source["Name"] == "shared"
    assert source["CustomTags"] == {"team": "billing", "env": "prod"}
    conn = urlsplit(source["ConnStr"])
    assert (conn.hostname, conn.port, conn.username) == ("127.0.0.1", pg_cluster.port, "postgres")
    assert conn.password == secrets.obfuscate(password)

    # Sequin sees the same source, same id, password obfuscated, no slot.
    listed = dialects["sequin"]("GET", "")
    assert [db["name"] for db in listed.get_json()["data"]] == ["shared"]
    database = dialects["sequin"]("GET", "/shared").get_json()
    assert (database["hostname"], database["port"]) == ("127.0.0.1", pg_cluster.port)
    assert database["password"] == secrets.obfuscate(password)
    assert database["replication_slots"] == []
    assert dialects["sequin"]("GET", f"/{database['id']}").get_json()["name"] == "shared"

    # pgwatch's UI edits by GET, change, PUT back: the password is kept...
    source["Group"] = "finance"
    put = dialects["pgwatch"]("PUT", "/source/shared", json=source)
    assert put.status_code == 200, put.get_data(as_text=True)
    with app.app_context():
        kept = store.get("shared", show_password=True)
    assert kept["password"] == password
    probe.check(probe.parameters(kept))  # and still logs in to the real cluster
    # ... and Datasentinel shows the change made through pgwatch.
    shown = dialects["datasentinel"]("GET", "/shared").get_json()
    assert shown["password"] == secrets.obfuscate(password)
    assert shown["tags"] in ("env=prod,team=billing", "team=billing,env=prod")

    deleted = dialects["sequin"]("DELETE", "/shared")
    assert deleted.get_json() == {"success": True, "id": database["id"]}
    assert dialects["datasentinel"]("GET", "/shared").status_code == 404
    assert dialects["pgwatch"]("GET", "/source/shared").status_code == 404
    assert dialects["datasentinel"]("GET", "").get_json() == []

    # The password was never written in clear anywhere a user could read it.
    assert password not in caplog.text
    with app.app_context():
        messages = " ".join(str(n) for n in notifications.recent())
    assert password not in messages
    state_file = Path(app.config["SENTINEL"]["database"].removeprefix("sqlite:///"))
    for path in state_file.parent.glob("sentinel.db*"):
        assert password.encode() not in path.read_bytes()


def test_created_through_pgwatch_is_refused_a_taken_name_by_the_two_others(dialects, pg_cluster):
    conn = f"postgresql://postgres@127.0.0.1:{pg_cluster.port}/postgres"
    created = dialects["pgwatch"]("POST", "/source", json={"Name": "taken", "ConnStr": conn})
    assert created.status_code == 201, created.get_data(as_text=True)

    body = {"host": "127.0.0.1", "port": pg_cluster.port, "user": "postgres", "password": "x"}
    again = dialects["datasentinel"]("POST", "/taken", json=body)
    assert again.status_code == 409
    assert "error" in again.get_json()
    sequin = dialects["sequin"](
        "POST",
        "",
        json={
            "name": "taken",
            "hostname": "127.0.0.1",
            "database": "postgres",
            "username": "postgres",
            "password": "x",
            "replication_slots": [{"publication_name": "p", "slot_name": "s"}],
        },
    )
    assert sequin.status_code == 422
    assert sequin.get_json()["validation_errors"] == {"name": ["Database name must be unique"]}


@pytest.mark.parametrize(
    "name", ["sh%", "sh_red", "*", "shared'; DROP TABLE pool_source; --", "../shared", "SHARED"]
)
def test_a_hostile_or_near_name_finds_nothing_in_any_dialect(app, dialects, name):
    with app.app_context():
        store.create({"name": "shared", "host": "127.0.0.1", "user": "postgres"})
    path = "/" + quote(name, safe="")
    assert dialects["datasentinel"]("GET", path).status_code == 404
    assert dialects["pgwatch"]("GET", "/source" + path).status_code == 404
    assert dialects["sequin"]("GET", path).status_code == 404
    assert dialects["sequin"]("DELETE", path).status_code == 404
    with app.app_context():
        assert [source["name"] for source in store.all()] == ["shared"]
