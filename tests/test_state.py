"""The state database: migrations, WAL, and nothing usable at rest."""

import hashlib
import os
import sqlite3
import subprocess
import sys

import pytest

from sentinel import create_app, state
from sentinel.auth import accounts, sessions


def test_a_fresh_state_database_is_migrated_at_start(settings):
    # A new file, not the tests' usual state, which comes migrated.
    app = create_app({**settings, "database": f"sqlite:///{settings['state_dir']}/new.db"})
    with app.app_context():
        pending = state.pending_migrations(state.database.obj)
        tables = set(state.database.get_tables())
    state.database.close_all()
    assert pending == []
    assert {"users", "session", "api_token", "notification", "sentinel_schema"} <= tables


def test_sqlite_state_runs_in_wal_mode(app, sqlite_state):
    with app.app_context():
        mode = state.database.execute_sql("PRAGMA journal_mode").fetchone()[0]
        timeout = state.database.execute_sql("PRAGMA busy_timeout").fetchone()[0]
    assert mode == "wal"
    assert timeout >= 1000


def test_a_transaction_reading_then_writing_is_not_refused_by_another_writer(app, sqlite_state):
    """With the state on SQLite, a transaction that reads and then writes (a
    source's update, a user's) holds the write lock from its start: another
    process wanting to write waits its turn. Begun plainly, SQLite let the
    other process commit between the read and the write, then refused the
    write at once ("database is locked"), whatever the busy timeout."""
    other = sqlite3.connect(sqlite_state.removeprefix("sqlite:///"), timeout=0.2)
    other.isolation_level = None
    with app.app_context():
        with state.database.atomic():
            users = state.database.execute_sql("SELECT count(*) FROM users").fetchone()[0]
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                # It waits for this transaction (and gives up here, after 0.2 s).
                other.execute("UPDATE users SET username = username")
            accounts.create_user("bob", "bob-password", "viewer")
        other.execute("UPDATE users SET username = username")  # it writes once this is done
        assert state.database.execute_sql("SELECT count(*) FROM users").fetchone()[0] == users + 1
    other.close()


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_processes_starting_together_migrate_once(request, settings, backend):
    # Several web and worker processes start at once against one new database
    # (not the tests' usual SQLite state, which comes migrated).
    if backend == "postgres":
        url = request.getfixturevalue("empty_postgres_state")
    else:
        url = f"sqlite:///{settings['state_dir']}/new.db"
    env = {**os.environ, "SENTINEL_DATABASE": url, "SENTINEL_STATE_DIR": settings["state_dir"]}
    starts = [
        subprocess.Popen(
            [sys.executable, "-c", "from sentinel import create_app; create_app()"],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    outcomes = []
    for process in starts:
        _, errors = process.communicate(timeout=60)
        outcomes.append((process.returncode, errors))
    assert all(code == 0 for code, _ in outcomes), outcomes
    app = create_app({**settings, "database": url})
    with app.app_context():
        rows = state.database.execute_sql("SELECT name FROM sentinel_schema").fetchall()
    every = sorted((path.stem,) for path in state.MIGRATIONS_DIR.glob("[0-9]*.py"))
    assert sorted(tuple(row) for row in rows) == every


def test_users_from_before_roles_stay_admins(tmp_path):
    db = state.open_database(f"sqlite:///{tmp_path / 'old.db'}")
    with db.connection_context():
        state.runner(db).up(target="0002_collected_samples")
        db.execute_sql(
            "INSERT INTO users (username, password_hash, created_at)"
            " VALUES ('olddba', 'x', '2026-01-01 00:00:00')"
        )
    state.migrate(db, tmp_path)
    with db.connection_context():
        assert db.execute_sql("SELECT role FROM users").fetchall() == [("admin",)]


def test_a_copy_of_the_state_file_gives_no_credential(app, auth, sqlite_state):
    session = auth.login()
    with app.app_context():
        token = sessions.create_token(state.User.get(username="alice"), "backup-script")
    state.database.close_all()
    with sqlite3.connect(sqlite_state.removeprefix("sqlite:///")) as conn:
        dump = "\n".join(conn.iterdump())
    for secret in (session, token, "alice-password"):
        assert secret not in dump
    assert hashlib.sha256(session.encode()).hexdigest() in dump


def test_state_in_postgresql_survives_its_server_restarting(own_cluster, settings):
    own_cluster.execute("CREATE DATABASE sentinel_state")
    app = create_app({**settings, "database": own_cluster.url("sentinel_state")})
    client = app.test_client()
    with app.app_context():
        accounts.create_user("alice", "alice-password")
    session = client.post(
        "/login", json={"username": "alice", "password": "alice-password"}
    ).get_json()["session"]
    headers = {"X-Session": session}
    assert client.get("/profile", headers=headers).status_code == 200

    own_cluster.stop()
    down = client.get("/notifications", headers=headers)
    assert down.status_code == 503
    assert down.get_json() == {"error": "Sentinel's state database is unavailable; retry shortly."}
    assert client.get("/status").status_code == 503

    own_cluster.start()
    # The pooled connections died with the server: none of that shows.
    assert client.get("/notifications", headers=headers).status_code == 200
    assert client.get("/profile", headers=headers).get_json() == {"username": "alice"}
    assert client.get("/status").status_code == 200
    state.database.close_all()
