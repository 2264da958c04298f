"""The pool's source store: one model every dialect will view, its values
checked in one place, and its passwords encrypted at rest, obfuscated when
shown, and never logged."""

import logging
import sqlite3
import stat
import threading
from pathlib import Path

import psycopg2.extensions
import pytest
from cryptography.fernet import Fernet

from sentinel import config, create_app, state
from sentinel.errors import Conflict, Invalid, NotFound, SecretUnreadable
from sentinel.pool import secrets, store
from sentinel.pool.models import ReplicationSlot

PASSWORD = "a-long-secret-password"


def source(**fields):
    """The fields of a source as a dialect would hand them over."""
    return {"name": "sales", "host": "db.example.com", "user": "monitor", **fields}


@pytest.fixture
def pool(app):
    with app.app_context():
        yield store


def close(app):
    app.extensions["sentinel.postgres"].close()
    app.extensions["sentinel.redis"].close()
    state.database.close_all()


def restart(settings, **overrides):
    """A new app on the same state and state dir, as after a service restart."""
    state.database.close_all()
    return create_app({**settings, **overrides})


# -- create, read, update, delete ----------------------------------------------------------


def test_a_source_goes_through_create_get_update_and_delete(pool):
    created = pool.create(source(password=PASSWORD, tags={"env": "prod"}, port=6432))
    assert created["password"] == "a-l******************d"
    assert pool.get("sales") == created
    assert pool.get(created["id"]) == created
    assert pool.get(created["id"].upper()) == created

    updated = pool.update("sales", {"port": 5433, "enabled": False, "tags": {}})
    assert (updated["port"], updated["enabled"], updated["tags"]) == (5433, False, {})
    assert updated["host"] == "db.example.com"  # what was not given is kept
    assert updated["updated_at"] > created["updated_at"]
    assert [listed["name"] for listed in pool.all()] == ["sales"]

    assert pool.delete(created["id"]) == {"id": created["id"], "name": "sales"}
    with pytest.raises(NotFound):
        pool.get("sales")
    assert pool.all() == []


def test_a_new_source_has_the_references_defaults(pool):
    created = pool.create(source())
    defaults = {
        "port": 5432,
        "dbname": "postgres",
        "password": "",
        "sslmode": "prefer",
        "ipv6": False,
        "tags": {},
        "group": "default",
        "kind": "postgres",
        "preset": None,
        "metrics": {},
        "only_if_primary": False,
        "enabled": True,
        "collection_rate": "low",
        "samples": False,
        "lock_monitoring": True,
        "lock_monitoring_delay": 30,
        "table_monitoring": True,
        "query_monitoring": True,
        "query_optimize": False,
        "min_calls": 2,
        "min_time": 1,
        "primary_host": None,
        "replication_slots": [],
        "connected": None,
        "last_error": None,
        "last_collected_at": None,
    }
    assert {name: created[name] for name in defaults} == defaults


def test_the_password_shows_in_clear_only_when_asked(pool):
    pool.create(source(password=PASSWORD))
    assert pool.get("sales")["password"] == secrets.obfuscate(PASSWORD)
    assert pool.get("sales", show_password=True)["password"] == PASSWORD
    assert [found["password"] for found in pool.all(show_password=True)] == [PASSWORD]


def test_updating_without_a_password_keeps_the_stored_one(pool):
    pool.create(source(password=PASSWORD))
    pool.update("sales", {"host": "db2.example.com"})
    assert pool.get("sales", show_password=True)["password"] == PASSWORD
    # A form edited and sent back whole carries the obfuscated password.
    pool.update("sales", {"password": secrets.obfuscate(PASSWORD)})
    assert pool.get("sales", show_password=True)["password"] == PASSWORD
    pool.update("sales", {"password": "a-new-one"})
    assert pool.get("sales", show_password=True)["password"] == "a-new-one"


def test_a_taken_name_is_a_conflict(pool):
    pool.create(source())
    pool.create(source(name="hr"))
    with pytest.raises(Conflict, match="name: a source named 'sales' already exists"):
        pool.create(source(host="elsewhere"))
    with pytest.raises(Conflict, match="name: "):
        pool.update("hr", {"name": "sales"})
    assert pool.get("hr")["name"] == "hr"


def test_an_unknown_source_is_not_found(pool):
    for name_or_id in ("nothing", "7d49c506-408b-4744-a106-52a8525cbe1c"):
        with pytest.raises(NotFound):
            pool.get(name_or_id)
        with pytest.raises(NotFound):
            pool.update(name_or_id, {"port": 1})
        with pytest.raises(NotFound):
            pool.delete(name_or_id)


# -- what the store refuses ---------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["sa'les", 'sa"les', "sales;drop", "sal%", "*", "sales/x", "../sales", "sa les", "", "é"],
)
def test_a_hostile_name_is_refused(name):
    with pytest.raises(Invalid, match="^name: "):
        store.create(source(name=name))


def test_a_name_matches_no_other_source(pool):
    pool.create(source(name="sales_eu"))
    for lookup in ("sales%", "sales*", "sales_e_", "salesXeu", "SALES_EU", "%", "_", "*"):
        with pytest.raises(NotFound):
            pool.get(lookup)
    assert pool.get("sales_eu")["name"] == "sales_eu"


def test_a_name_that_reads_as_a_uuid_is_refused():
    with pytest.raises(Invalid, match="^name: a UUID is taken for a source's id"):
        store.create(source(name="0123456789abcdef0123456789abcdef"))


def test_a_preset_and_custom_metrics_together_are_refused(pool):
    with pytest.raises(Invalid, match="^preset, metrics: a preset or custom metric intervals"):
        pool.create(source(preset="basic", metrics={"wal": 60}))
    pool.create(source(preset="basic"))
    with pytest.raises(Invalid, match="^preset, metrics: "):
        pool.update("sales", {"metrics": {"wal": 60}})
    assert pool.update("sales", {"preset": None, "metrics": {"wal": 60}})["metrics"] == {"wal": 60}
    with pytest.raises(Invalid, match="^standby_preset, standby_metrics: "):
        pool.update("sales", {"standby_preset": "basic", "standby_metrics": {"wal": 60}})


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"port": "5432"}, "port: expected an integer"),
        ({"port": 70000}, "port: must be between 1 and 65535"),
        ({"sslmode": "maybe"}, "sslmode: expected one of disable, allow, prefer"),
        ({"kind": "mysql"}, "kind: expected one of postgres, postgres-continuous-discovery"),
        ({"tags": {"env": 1}}, "tags: tag 'env': expected a string"),
        ({"tags": "env=prod"}, "tags: expected an object"),
        ({"metrics": {"wal": 0}}, "metrics: wal: must be between 1 and 86400 s"),
        ({"metrics": {"w a l": 60}}, "metrics: 'w a l' is not a metric name"),
        ({"collection_rate": "medium"}, "collection_rate: expected one of low, high"),
        ({"samples": "yes"}, "samples: expected true or false"),
        ({"dbname": "d" * 64}, "dbname: PostgreSQL names are at most 63 bytes"),
        ({"host": "db\n.example.com"}, "host: control characters are not allowed"),
        ({"password": None}, "password: expected a string"),
        ({"password": "\ud800"}, "password: not valid Unicode text"),
        ({"colour": "blue"}, "colour: unknown field"),
        ({"id": "7d49c506-408b-4744-a106-52a8525cbe1c"}, "id: set by Sentinel"),
        ({"connected": True}, "connected: set by Sentinel"),
        ({"primary_user": "replica"}, "primary_user: given without primary_host"),
        ({"primary_host": "primary.example.com"}, "primary_user: required with primary_host"),
        ({"replication_slots": [{"slot_name": "s"}]}, "replication_slots: item 1: publication"),
        (
            {"replication_slots": [{"publication_name": "p", "slot_name": "Bad-Slot"}]},
            "replication_slots: item 1: slot_name: lower case letters",
        ),
    ],
)
def test_a_bad_value_is_refused_naming_its_field(fields, message):
    # Checked before anything is stored: no state is needed to refuse it.
    with pytest.raises(Invalid) as caught:
        store.create(source(**fields))
    assert caught.value.message.startswith(message)


@pytest.mark.parametrize("missing", ["name", "host", "user"])
def test_a_required_field_missing_is_named(missing):
    fields = source()
    del fields[missing]
    with pytest.raises(Invalid, match=f"^{missing}: required"):
        store.create(fields)


# -- a replica's primary and the replication slots ---------------------------------------


def test_a_replica_keeps_its_primary_connection_and_drops_it_whole(pool):
    created = pool.create(
        source(
            primary_host="primary.example.com",
            primary_user="replica",
            primary_password="p-secret1",
        )
    )
    assert created["primary_port"] == 5432 and created["primary_dbname"] == "postgres"
    assert created["primary_password"] == "p*******1"
    assert pool.get("sales", show_password=True)["primary_password"] == "p-secret1"
    dropped = pool.update("sales", {"primary_host": None})
    primary = {name: value for name, value in dropped.items() if name.startswith("primary_")}
    assert set(primary.values()) == {None}


def test_replication_slots_are_kept_changed_and_deleted_with_their_source(pool):
    created = pool.create(
        source(replication_slots=[{"publication_name": "orders", "slot_name": "orders_slot"}])
    )
    [slot] = created["replication_slots"]
    assert slot["status"] == "active" and len(slot["id"]) == 36
    updated = pool.update(
        "sales",
        {
            "replication_slots": [
                {**slot, "status": "disabled"},
                {"publication_name": "items", "slot_name": "items_slot"},
            ]
        },
    )
    by_name = {slot["slot_name"]: slot for slot in updated["replication_slots"]}
    assert by_name["orders_slot"] == {**slot, "status": "disabled"}
    assert by_name["items_slot"]["status"] == "active"
    pool.delete("sales")
    assert ReplicationSlot.select().count() == 0


# -- passwords at rest -------------------------------------------------------------------------


def state_file_bytes(sqlite_state):
    """Everything SQLite wrote of the state: the database and its WAL."""
    path = Path(sqlite_state.removeprefix("sqlite:///"))
    return b"".join(file.read_bytes() for file in path.parent.glob(f"{path.name}*"))


def test_the_state_file_holds_the_password_encrypted_never_in_clear(app, pool, sqlite_state):
    pool.create(
        source(password=PASSWORD, primary_host="p", primary_user="u", primary_password=PASSWORD)
    )
    state.database.close_all()
    assert PASSWORD.encode() not in state_file_bytes(sqlite_state)
    assert secrets.obfuscate(PASSWORD).encode() not in state_file_bytes(sqlite_state)
    path = sqlite_state.removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:
        tokens = conn.execute(
            "SELECT encrypted_password, primary_encrypted_password FROM pool_source"
        ).fetchone()
    assert [secrets.decrypt(token) for token in tokens] == [PASSWORD, PASSWORD]


def test_no_password_is_logged(pool, caplog):
    caplog.set_level(logging.DEBUG)
    pool.create(source(password=PASSWORD))
    pool.update("sales", {"password": "another-secret-password"})
    pool.delete("sales")
    assert "event=source_created source=sales" in caplog.text
    assert PASSWORD not in caplog.text and "another-secret-password" not in caplog.text
    assert secrets.obfuscate(PASSWORD) not in caplog.text


def test_the_key_file_is_private_and_outlives_a_restart(app, pool, settings):
    pool.create(source(password=PASSWORD))
    key_file = Path(settings["state_dir"]) / "pool.key"
    key = key_file.read_text()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    again = restart(settings)
    try:
        with again.app_context():
            assert store.get("sales", show_password=True)["password"] == PASSWORD
    finally:
        close(again)
    assert key_file.read_text() == key


def test_processes_starting_together_make_one_key(settings, tmp_path):
    state_dir = tmp_path / "new-state"
    state_dir.mkdir(mode=0o700)
    barrier = threading.Barrier(8)
    keyrings = [secrets.Keyring() for _ in range(8)]

    def start(keyring):
        barrier.wait()
        keyring.bind({**settings, "state_dir": str(state_dir), "pool_secret_key": ""})

    threads = [threading.Thread(target=start, args=(keyring,)) for keyring in keyrings]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    token = keyrings[0].fernet.encrypt(b"x")
    assert {keyring.fernet.decrypt(token) for keyring in keyrings} == {b"x"}
    assert [path.name for path in state_dir.iterdir()] == ["pool.key"]


def test_the_key_can_come_from_the_setting(app, pool, settings):
    key = Fernet.generate_key().decode()
    again = restart(settings, pool_secret_key=key)
    try:
        with again.app_context():
            store.create(source(password=PASSWORD))
            query = "SELECT encrypted_password FROM pool_source"
            token = state.database.execute_sql(query).fetchone()[0]
    finally:
        close(again)
    assert Fernet(key).decrypt(token.encode()) == PASSWORD.encode()


@pytest.mark.parametrize("where", ["setting", "file"])
def test_a_wrong_key_is_a_clear_error(app, pool, settings, where):
    pool.create(source(password=PASSWORD))
    token = state.database.execute_sql("SELECT encrypted_password FROM pool_source").fetchone()[0]
    other = Fernet.generate_key().decode()
    key_file = Path(settings["state_dir"]) / "pool.key"
    if where == "file":
        key_file.write_text(other + "\n")
    again = restart(settings, pool_secret_key=other if where == "setting" else "")
    try:
        with again.app_context():
            with pytest.raises(SecretUnreadable) as caught:
                store.get("sales", show_password=True)
            # Given again, the password is stored with the key in use.
            store.update("sales", {"password": PASSWORD})
            assert store.get("sales", show_password=True)["password"] == PASSWORD
    finally:
        close(again)
    message = caught.value.message
    assert ("SENTINEL_POOL_SECRET_KEY" if where == "setting" else str(key_file)) in message
    assert "encrypted with another key" in message
    assert PASSWORD not in message and token not in message and other not in message


def test_a_password_shown_obfuscated_before_a_key_change_is_unreadable_after_it(
    app, pool, settings
):
    pool.create(source(password=PASSWORD))
    assert pool.get("sales")["password"] == "a-l******************d"
    again = restart(settings, pool_secret_key=Fernet.generate_key().decode())
    try:
        with again.app_context():
            with pytest.raises(SecretUnreadable):
                store.get("sales")
            with pytest.raises(SecretUnreadable):
                store.all()
    finally:
        close(again)


# -- obfuscation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "password, shown",
    [
        ("", ""),
        ("a", "*"),
        ("abcde", "*****"),
        ("abcdef", "a****f"),
        ("abcdefghi", "a*******i"),
        ("abcdefghij", "abc******j"),
        ("secret-password", "sec***********d"),
        ("x" * 24 + "y", "xxx" + "*" * 20 + "y"),
        ("p" * 200 + "!", "ppp" + "*" * 20 + "!"),
    ],
)
def test_passwords_are_obfuscated_by_sequins_rule(password, shown):
    assert secrets.obfuscate(password) == shown


@pytest.mark.parametrize(
    "conninfo, shown",
    [
        (
            "postgresql://monitor:secret-password@db1:5432,db2/sales?sslmode=require",
            "postgresql://monitor:sec***********d@db1:5432,db2/sales?sslmode=require",
        ),
        (
            "postgres://monitor@db1/sales?password=secret-password&application_name=a%20b",
            "postgres://monitor@db1/sales?password=sec***********d&application_name=a%20b",
        ),
        ("postgresql://m:p%40ss%2Fw0rd%21@db1/sales", "postgresql://m:p%40s******%21@db1/sales"),
        ("postgresql:///sales?host=/run/postgresql", "postgresql:///sales?host=/run/postgresql"),
        ("host=db1 user=monitor password=secret-password", None),
        ("host=db1 password='secret password' dbname=sales", None),
        ("host=db1 dbname=sales", "host=db1 dbname=sales"),
    ],
)
def test_a_connection_string_shows_its_password_obfuscated(conninfo, shown):
    result = secrets.obfuscate_dsn(conninfo)
    assert "secret" not in result and "p@ss" not in result
    if shown is not None:
        assert result == shown
    else:  # a keyword string: same parameters, password obfuscated
        expected = psycopg2.extensions.parse_dsn(conninfo)
        expected["password"] = secrets.obfuscate(expected["password"])
        assert psycopg2.extensions.parse_dsn(result) == expected


def test_a_connection_string_libpq_cannot_read_is_refused_without_echo():
    with pytest.raises(Invalid) as caught:
        secrets.obfuscate_dsn("host=db1 password='secret-password")
    assert "secret" not in caught.value.message


# -- the state in PostgreSQL -------------------------------------------------------------------


def test_sources_live_in_postgresql_state_too(settings, postgres_state):
    app = create_app({**settings, "database": postgres_state})
    try:
        with app.app_context():
            created = store.create(
                source(
                    password=PASSWORD,
                    tags={"env": "prod"},
                    replication_slots=[{"publication_name": "orders", "slot_name": "orders"}],
                )
            )
            with pytest.raises(Conflict):
                store.create(source())
            assert store.get("sales") == created
            assert store.all() == [created]
            assert store.get(created["id"], show_password=True)["password"] == PASSWORD
            assert store.update("sales", {"group": "eu"})["group"] == "eu"
            store.delete("sales")
            assert ReplicationSlot.select().count() == 0
    finally:
        close(app)


def test_a_pool_key_setting_that_is_no_fernet_key_is_refused_unrepeated(tmp_path):
    environ = {
        "SENTINEL_CONFIG": str(tmp_path / "none.conf"),
        "SENTINEL_STATE_DIR": str(tmp_path / "state"),
        "SENTINEL_POOL_SECRET_KEY": "not-a-key-but-a-secret",
    }
    with pytest.raises(config.ConfigError) as caught:
        config.load(environ)
    assert str(caught.value).startswith("SENTINEL_POOL_SECRET_KEY: expected a Fernet key")
    assert "not-a-key-but-a-secret" not in str(caught.value)
