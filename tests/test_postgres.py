"""Access to the managed instance: pooled, bounded, timed out, and healing
after PostgreSQL goes away and comes back."""

import threading
import time

import psycopg2
import pytest
from polling import wait_for

from sentinel import postgres
from sentinel.errors import PostgresTimeout, PostgresUnavailable
from sentinel.extensions import postgres as postgres_extension


@pytest.fixture
def pool(pg_cluster):
    pool = postgres.Postgres(pg_cluster.dsn(), size=3, statement_timeout=300, lock_timeout=200)
    yield pool
    pool.close()


def sentinel_backends(cluster):
    return cluster.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'sentinel'"
    )[0][0]


def test_rows_come_back_as_dicts(pool):
    assert pool.query("SELECT 1 AS a, 'x' AS b UNION ALL SELECT 2, 'y'") == [
        {"a": 1, "b": "x"},
        {"a": 2, "b": "y"},
    ]
    assert pool.queryone("SELECT 1 AS a WHERE false") is None
    assert pool.queryscalar("SELECT 42") == 42


def test_every_session_is_named_and_timed_out(pool):
    row = pool.queryone(
        "SELECT current_setting('application_name') AS app,"
        " current_setting('statement_timeout') AS statement,"
        " current_setting('lock_timeout') AS lock"
    )
    assert row == {"app": "sentinel", "statement": "300ms", "lock": "200ms"}


def test_a_runaway_query_is_cut_by_statement_timeout(pool):
    with pytest.raises(PostgresTimeout, match="statement timeout"):
        pool.query("SELECT pg_sleep(5)")
    assert pool.queryscalar("SELECT 1") == 1


def test_a_query_behind_a_lock_gives_up_after_lock_timeout(pool, pg_cluster):
    pg_cluster.execute("CREATE TABLE IF NOT EXISTS locked_table (id int)")
    holder = pg_cluster.connect()
    holder.autocommit = False
    try:
        with holder.cursor() as cursor:
            cursor.execute("LOCK TABLE locked_table IN ACCESS EXCLUSIVE MODE")
        started = time.monotonic()
        with pytest.raises(PostgresTimeout, match="lock timeout"):
            pool.query("SELECT * FROM locked_table")
        assert time.monotonic() - started < 2
    finally:
        holder.rollback()
        holder.close()
        pg_cluster.execute("DROP TABLE locked_table")


def test_the_pool_never_opens_more_than_its_size(pool, pg_cluster):
    peak = []

    def work():
        pool.query("SELECT pg_sleep(0.1)")

    def watch():
        for _ in range(20):
            peak.append(sentinel_backends(pg_cluster))
            time.sleep(0.02)

    threads = [threading.Thread(target=work) for _ in range(12)]
    watcher = threading.Thread(target=watch)
    watcher.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    watcher.join()
    assert max(peak) == 3


def test_connections_are_reused(pool, pg_cluster):
    pids = {pool.queryscalar("SELECT pg_backend_pid()") for _ in range(10)}
    assert len(pids) == 1


def test_a_terminated_pooled_connection_is_replaced_silently(pool, pg_cluster):
    first = pool.queryscalar("SELECT pg_backend_pid()")
    pg_cluster.execute("SELECT pg_terminate_backend(%s)", (first,))
    wait_for(
        lambda: not pg_cluster.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (first,)),
        what="the terminated backend to be gone",
    )
    second = pool.queryscalar("SELECT pg_backend_pid()")
    assert second != first


def test_a_restart_never_surfaces_as_an_error(own_cluster):
    pool = postgres.Postgres(own_cluster.dsn(), size=2)
    try:
        before = pool.queryscalar("SELECT pg_postmaster_start_time()")
        own_cluster.stop()
        own_cluster.start()
        after = pool.queryscalar("SELECT pg_postmaster_start_time()")
        assert after > before
    finally:
        pool.close()


def test_a_stopped_server_is_unavailable_then_back(own_cluster):
    pool = postgres.Postgres(own_cluster.dsn(), size=2, connect_timeout=2)
    try:
        assert pool.queryscalar("SELECT 1") == 1
        own_cluster.stop()
        with pytest.raises(PostgresUnavailable) as caught:
            pool.queryscalar("SELECT 1")
        assert caught.value.message.startswith("PostgreSQL is unavailable: ")
        assert "Connection refused" in caught.value.message
        own_cluster.start()
        assert pool.queryscalar("SELECT 1") == 1
    finally:
        pool.close()


def test_the_api_answers_503_while_postgresql_is_down(own_cluster, settings, make_user):
    from sentinel import create_app

    app = create_app({**settings, "pg_dsn": own_cluster.dsn()})

    # Every route reading the instance goes through the same pool and handler.
    @app.get("/probe-for-test")
    def probe():
        return {"one": postgres_extension.pool.queryscalar("SELECT 1")}

    client = app.test_client()
    assert client.get("/probe-for-test").get_json() == {"one": 1}
    own_cluster.stop()
    down = client.get("/probe-for-test")
    assert down.status_code == 503
    assert down.get_json()["error"].startswith("PostgreSQL is unavailable: ")
    facts = client.get("/discover")
    assert facts.status_code == 200
    assert facts.get_json()["pg_version"] is None
    assert facts.get_json()["hostname"] == "sentinel.test"
    # The temBoard UI keys an instance by host and port: the port stays.
    assert facts.get_json()["pg_port"] == own_cluster.port
    assert facts.get_json()["pg_data"] is None
    own_cluster.start()
    assert client.get("/probe-for-test").get_json() == {"one": 1}
    assert client.get("/discover").get_json()["pg_port"] == own_cluster.port


def test_a_query_error_is_a_bug_not_an_outage(pool):
    with pytest.raises(psycopg2.errors.UndefinedTable):
        pool.query("SELECT * FROM no_such_table")
    assert pool.queryscalar("SELECT 1") == 1


def test_sql_files_keep_the_lines_of_the_server_version(tmp_path):
    path = tmp_path / "versioned.sql"
    path.write_text("SELECT a,\n       b, -- pg>=14\n       c -- pg<14\nFROM t\n")
    assert postgres.load_sql(path, 150004) == "SELECT a,\n       b,\nFROM t"
    assert postgres.load_sql(path, 130011) == "SELECT a,\n       c\nFROM t"


def test_sql_files_take_named_parameters(pool, tmp_path):
    path = tmp_path / "by_pid.sql"
    path.write_text(
        "-- A comment may say 100%% of the rows.\n"
        "SELECT pid, 'a%%b' AS literal FROM pg_stat_activity\n"
        " WHERE pid = ANY (%(pids)s::int[]) AND pid = %(first)s\n"
    )

    def work(conn):
        me = conn.queryscalar("SELECT pg_backend_pid()")
        return me, conn.query_file(path, {"pids": [me, 1], "first": me})

    me, rows = pool.run(work)
    assert rows == [{"pid": me, "literal": "a%b"}]


def test_sql_files_are_prepared_once_per_connection(pool, tmp_path):
    path = tmp_path / "sql" / "mine.sql"
    path.parent.mkdir()
    path.write_text("SELECT pg_backend_pid() AS pid, %(value)s::int AS value\n")

    def work(conn):
        rows = [conn.query_file(path, {"value": value}) for value in range(3)]
        return rows, conn.query("SELECT name FROM pg_prepared_statements")

    rows, statements = pool.run(work)
    assert [row[0]["value"] for row in rows] == [0, 1, 2]
    assert statements == [{"name": f"sentinel_{tmp_path.name}_mine".replace("-", "_")}]


def test_connections_to_other_databases_are_reused_within_the_pool_size(pg_cluster):
    name = "sentinel-pool-test"
    pool = postgres.Postgres(pg_cluster.dsn(), size=2, application_name=name)
    pg_cluster.execute("CREATE DATABASE pooled_other")
    try:
        databases = ["pooled_other", "postgres", "pooled_other", "template1", "postgres"]
        pids = [
            (dbname, pool.run(lambda conn: conn.queryscalar("SELECT pg_backend_pid()"), dbname))
            for dbname in databases
        ]
        opened = pg_cluster.execute(
            "SELECT pid, datname FROM pg_stat_activity WHERE application_name = %s", (name,)
        )
        # The second visit of a database reuses its connection...
        assert pids[0][1] == pids[2][1]
        # ...and at most `size` (2) connections stay open, all databases together.
        assert len(opened) <= 2
        assert {row[1] for row in opened} <= {"pooled_other", "template1", "postgres"}
    finally:
        pool.close()
        pg_cluster.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'pooled_other'"
        )
        pg_cluster.execute("DROP DATABASE pooled_other")


def test_a_connection_to_another_database_survives_a_restart(own_cluster):
    pool = postgres.Postgres(own_cluster.dsn(), size=1)
    try:
        before = pool.run(lambda conn: conn.queryscalar("SELECT current_database()"), "template1")
        own_cluster.stop()
        own_cluster.start()
        # The pooled connection is dead; a new one replaces it without an error.
        after = pool.run(lambda conn: conn.queryscalar("SELECT current_database()"), "template1")
        assert before == after == "template1"
    finally:
        pool.close()
