"""The command line, run as a DBA runs it: `python -m sentinel ...`."""

import sqlite3

import pytest

from sentinel import create_app


def login(settings, username, password):
    client = create_app(settings).test_client()
    return client.post("/login", json={"username": username, "password": password})


def test_create_a_user_with_the_password_on_stdin(sentinel, settings):
    result = sentinel("users", "create", "alice", "--password-stdin", stdin="alice-password\n")
    assert result.returncode == 0, result.stderr
    assert "User alice created (admin)." in result.stdout
    assert login(settings, "alice", "alice-password").status_code == 200


def test_passwords_are_stored_as_argon2id_hashes_of_the_recommended_cost(sentinel, settings):
    sentinel("users", "create", "alice", "--password-stdin", stdin="alice-password\n")
    database = settings["database"].removeprefix("sqlite:///")
    with sqlite3.connect(database) as conn:
        (stored,) = conn.execute("SELECT password_hash FROM users").fetchone()
    # RFC 9106's second recommendation: 64 MiB, 3 passes, 4 lanes.
    assert stored.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert "alice-password" not in stored


def test_create_a_user_with_the_password_prompted_twice(sentinel, settings):
    result = sentinel("users", "create", "bob", stdin="bob-password\nbob-password\n")
    assert result.returncode == 0, result.stderr
    assert login(settings, "bob", "bob-password").status_code == 200


def test_list_change_password_and_delete(sentinel, settings):
    sentinel("users", "create", "alice", "--password-stdin", stdin="alice-password\n")
    sentinel("users", "create", "bob", "--password-stdin", stdin="bob-password\n")
    listed = sentinel("users", "list").stdout.splitlines()
    assert [line.split("\t")[0] for line in listed] == ["alice", "bob"]

    changed = sentinel("users", "passwd", "alice", "--password-stdin", stdin="new-password\n")
    assert changed.returncode == 0, changed.stderr
    assert login(settings, "alice", "alice-password").status_code == 404
    assert login(settings, "alice", "new-password").status_code == 200

    assert sentinel("users", "delete", "bob").returncode == 0
    assert [line.split("\t")[0] for line in sentinel("users", "list").stdout.splitlines()] == [
        "alice"
    ]


@pytest.mark.parametrize(
    "args, stdin, message",
    [
        (("users", "create", "Alice!"), "alice-password\n", "Parameter 'username' is malformed."),
        (("users", "create", "alice"), "short\n", "at least 8 characters"),
        (("users", "delete", "nobody"), "", "User 'nobody' not found."),
        (("users", "passwd", "nobody"), "long-enough\n", "User 'nobody' not found."),
        (("tokens", "create", "nobody", "x"), "", "User 'nobody' not found."),
    ],
)
def test_refusals_are_one_line_without_traceback(sentinel, args, stdin, message):
    result = sentinel(*args, "--password-stdin", stdin=stdin) if stdin else sentinel(*args)
    assert result.returncode == 1
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_creating_an_existing_user_is_refused(sentinel):
    sentinel("users", "create", "alice", "--password-stdin", stdin="alice-password\n")
    again = sentinel("users", "create", "alice", "--password-stdin", stdin="other-password\n")
    assert again.returncode == 1
    assert "User 'alice' already exists." in again.stderr


def test_a_token_is_printed_once_and_never_listed(sentinel, app):
    sentinel("users", "create", "alice", "--password-stdin", stdin="alice-password\n")
    created = sentinel("tokens", "create", "alice", "deploy")
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    assert token.startswith("snt_") and len(token) > 40

    listed = sentinel("tokens", "list").stdout
    assert "alice\tdeploy\tnever used" in listed
    assert token not in listed

    from sentinel.auth.access import token_user

    with app.test_request_context(headers={"Authorization": f"Bearer {token}"}):
        assert token_user().username == "alice"

    assert sentinel("tokens", "revoke", "alice", "deploy").returncode == 0
    assert sentinel("tokens", "list").stdout == ""


def test_ensure_admin_generates_a_password_once(sentinel, settings):
    first = sentinel("users", "ensure-admin")
    assert first.returncode == 0, first.stderr
    password = first.stdout.strip().rsplit(": ", 1)[1]
    assert login(settings, "admin", password).status_code == 200
    second = sentinel("users", "ensure-admin")
    assert "unchanged" in second.stdout
    assert password not in second.stdout


def test_ensure_admin_takes_the_configured_password(sentinel, settings):
    result = sentinel(
        "users", "ensure-admin", extra_env={"SENTINEL_ADMIN_PASSWORD": "admin-pass-1"}
    )
    assert "admin-pass-1" not in result.stdout
    assert login(settings, "admin", "admin-pass-1").status_code == 200


def test_migrate_says_the_schema_is_up_to_date_and_lists_migrations(sentinel):
    lines = sentinel("migrate").stdout.splitlines()
    assert lines[0] == "The schema is up to date."
    assert lines[1].startswith("0001_initial\t20")
    status = sentinel("migrate", "--status").stdout
    assert status.startswith("0001_initial\t20")


def test_check_config_creates_nothing_and_says_what_is_missing(sentinel, tmp_path):
    state_dir = tmp_path / "not-yet"
    result = sentinel("check-config", extra_env={"SENTINEL_STATE_DIR": str(state_dir)})
    assert result.returncode == 0, result.stderr
    assert not state_dir.exists()
    assert f"# warning: {state_dir} does not exist yet" in result.stdout


def test_check_config_hides_the_passwords_of_connection_strings(sentinel):
    result = sentinel(
        "check-config",
        extra_env={
            "SENTINEL_PG_DSN": "host=127.0.0.1 user=postgres password=dsn-secret",
            "SENTINEL_REDIS_URL": "redis://:redis-secret@127.0.0.1:6379/0",
        },
    )
    assert result.returncode == 0, result.stderr
    assert "dsn-secret" not in result.stdout and "redis-secret" not in result.stdout
    assert "SENTINEL_REDIS_URL=redis://:***@127.0.0.1:6379/0" in result.stdout


def test_check_config_masks_secrets(sentinel):
    result = sentinel(
        "check-config",
        extra_env={"SENTINEL_AGENT_KEY": "top-secret-key", "SENTINEL_BIND": "0.0.0.0:9999"},
    )
    assert result.returncode == 0, result.stderr
    assert "SENTINEL_BIND=0.0.0.0:9999" in result.stdout
    assert "SENTINEL_AGENT_KEY=********" in result.stdout
    assert "top-secret-key" not in result.stdout
