"""The statements plugin: pg_stat_statements read now in the agent's shape and
under both namings of its times, 404 when it is missing or not loaded, and
the history of deltas across real snapshots, resets, evictions, its size
budget and its retention, with the collector called directly and in a real
worker."""

import datetime
import re
import subprocess
import sys
import uuid

import pytest
from polling import wait_for

from sentinel import create_app, state
from sentinel.auth import accounts
from sentinel.extensions import postgres
from sentinel.plugins.statements import statements, tasks
from sentinel.plugins.statements.models import Statement, StatementDelta, StatementSnapshot

STAMP = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \+0000")
MOMENT = "%Y-%m-%dT%H:%M:%SZ"
RENAMED = {
    "total_time": "total_exec_time",
    "min_time": "min_exec_time",
    "max_time": "max_exec_time",
    "mean_time": "mean_exec_time",
    "stddev_time": "stddev_exec_time",
}
# The columns of pg_stat_statements 1.10 (PostgreSQL 15), as the agent serves them.
PG15_COLUMNS = {
    "userid",
    "dbid",
    "toplevel",
    "queryid",
    "query",
    "plans",
    "total_plan_time",
    "min_plan_time",
    "max_plan_time",
    "mean_plan_time",
    "stddev_plan_time",
    "calls",
    "total_exec_time",
    "min_exec_time",
    "max_exec_time",
    "mean_exec_time",
    "stddev_exec_time",
    "rows",
    "shared_blks_hit",
    "shared_blks_read",
    "shared_blks_dirtied",
    "shared_blks_written",
    "local_blks_hit",
    "local_blks_read",
    "local_blks_dirtied",
    "local_blks_written",
    "temp_blks_read",
    "temp_blks_written",
    "blk_read_time",
    "blk_write_time",
    "temp_blk_read_time",
    "temp_blk_write_time",
    "wal_records",
    "wal_fpi",
    "wal_bytes",
    "jit_functions",
    "jit_generation_time",
    "jit_inlining_count",
    "jit_inlining_time",
    "jit_optimization_count",
    "jit_optimization_time",
    "jit_emission_count",
    "jit_emission_time",
}


@pytest.fixture
def state_url(request, sqlite_state):
    """SQLite, or with `indirect` parametrization "postgresql", a state
    database in the cluster: the history's SQL runs on both."""
    if getattr(request, "param", "sqlite") == "postgresql":
        return request.getfixturevalue("postgres_state")
    return sqlite_state


BOTH_STATES = pytest.mark.parametrize("state_url", ["sqlite", "postgresql"], indirect=True)


@pytest.fixture
def headers(auth):
    return auth.headers()


def run(conn, sql, times=1):
    with conn.cursor() as cursor:
        for _ in range(times):
            cursor.execute(sql)


def marker(conn):
    """(name, a statement of its own on `conn`): pg_stat_statements tells
    statements apart by what they read, not by constants or aliases, so each
    marker reads a temporary table of its own, named in the statement."""
    name = f"marker_{uuid.uuid4().hex[:10]}"
    run(conn, f"CREATE TEMPORARY TABLE {name} (i int)")
    return name, f"SELECT count(*) FROM {name}"


def wide_table(conn, columns=1000):
    """A temporary table of many columns: `SELECT c<n> FROM it` are as many
    distinct statements."""
    name = f"wide_{uuid.uuid4().hex[:10]}"
    listed = ", ".join(f"c{number} int" for number in range(1, columns + 1))
    run(conn, f"CREATE TEMPORARY TABLE {name} ({listed})")
    return name


def reads(query, name):
    """Whether `query` is a SELECT reading the table `name` (not the CREATE making it)."""
    return query is not None and query.startswith("SELECT") and name in query


def entries_of(answer, name):
    return [row for row in answer.get_json()["data"] if reads(row["query"], name)]


@pytest.fixture
def collect(app, pg_cluster):
    """Take a snapshot as the worker does, in the app's context (settings
    overridable), of a view holding only what the test runs: the statements
    of earlier tests are reset away."""
    pg_cluster.execute("SELECT pg_stat_statements_reset()")

    def take(now=None, **overrides):
        with app.app_context():
            return statements.collect_and_store(
                postgres.pool, {**app.config["SENTINEL"], **overrides}, now
            )

    return take


def totals(app, name, start=None, end=None):
    """The history's totals of the statements whose text holds `name`."""
    with app.app_context():
        rows = list(statements.history(start, end or state.utcnow()))
    return [row for row in rows if reads(row["query"], name)]


# -- now --------------------------------------------------------------------------------------


def test_a_statement_run_shows_with_its_calls(client, headers, pg_connections):
    conn = pg_connections()
    name, sql = marker(conn)
    run(conn, sql, times=3)
    answer = client.get("/statements", headers=headers)
    assert answer.status_code == 200
    assert STAMP.fullmatch(answer.get_json()["snapshot_datetime"])
    [entry] = entries_of(answer, name)
    assert entry["calls"] == 3
    assert (entry["rolname"], entry["datname"]) == ("postgres", "postgres")
    assert isinstance(entry["userid"], int) and isinstance(entry["dbid"], int)


def test_every_column_of_the_server_is_there_with_the_old_names_beside(
    client, headers, pg_connections
):
    conn = pg_connections()
    name, _ = marker(conn)
    run(conn, f"SELECT pg_sleep(0.01) FROM (VALUES (1)) AS v LEFT JOIN {name} ON true")
    data = client.get("/statements", headers=headers).get_json()["data"]
    assert len(data) > 1  # all rows, all databases
    for entry in data:
        assert PG15_COLUMNS | {"rolname", "datname"} | set(RENAMED) <= set(entry)
        for old, new in RENAMED.items():
            assert entry[old] == entry[new]
    [entry] = [row for row in data if reads(row["query"], name)]
    assert entry["total_time"] >= 10  # ms: it slept


def test_statements_of_every_database_are_listed(client, headers, pg_cluster, pg_connections):
    conn = pg_connections("template1")
    name, sql = marker(conn)
    run(conn, sql, times=2)
    [entry] = entries_of(client.get("/statements", headers=headers), name)
    assert entry["datname"] == "template1" and entry["calls"] == 2


def test_the_agent_key_reads_the_statements(settings, make_user):
    app = create_app({**settings, "agent_key": "statements-agent-key-0123456789"})
    try:
        answer = app.test_client().get("/statements?key=statements-agent-key-0123456789")
        assert answer.status_code == 200
        assert app.test_client().get("/statements").status_code == 406
    finally:
        app.extensions["sentinel.postgres"].close()
        state.database.close_all()


def test_without_the_extension_statements_are_not_found(client, headers, pg_cluster):
    pg_cluster.execute("DROP EXTENSION pg_stat_statements")
    try:
        answer = client.get("/statements", headers=headers)
        assert answer.status_code == 404
        assert answer.get_json() == {"error": "pg_stat_statements not enabled on database postgres"}
    finally:
        pg_cluster.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    assert client.get("/statements", headers=headers).status_code == 200


@pytest.fixture
def app_on(settings):
    """app_on(cluster) -> an app watching that cluster (closed after the test)."""
    made = []

    def make(cluster, **more):
        app = create_app({**settings, "pg_dsn": cluster.dsn(), **more})
        made.append(app)
        return app

    yield make
    for app in made:
        app.extensions["sentinel.postgres"].close()
    state.database.close_all()


def restart_with(cluster, **settings):
    conn = cluster.connect()
    with conn.cursor() as cursor:
        for name, value in settings.items():
            cursor.execute(f"ALTER SYSTEM SET {name} = %s", (value,))
    conn.close()
    cluster.stop()
    cluster.start()


def test_not_loaded_is_not_found_and_a_stopped_server_unavailable(own_cluster, app_on, caplog):
    restart_with(own_cluster, shared_preload_libraries="auto_explain")
    app = app_on(own_cluster)
    client = app.test_client()
    with app.app_context():
        accounts.create_user("alice", "alice-password")
    session = client.post("/login", json={"username": "alice", "password": "alice-password"})
    headers = {"X-Session": session.get_json()["session"]}
    answer = client.get("/statements", headers=headers)
    assert answer.status_code == 404
    assert "shared_preload_libraries" in answer.get_json()["error"]
    # The collector says so in a line and stores nothing; the next run tries again.
    with app.app_context():
        tasks.snapshot()
        assert StatementSnapshot.select().count() == 0
    assert "event=statements_snapshot_skipped" in caplog.text
    own_cluster.stop("immediate")
    answer = client.get("/statements", headers=headers)
    assert answer.status_code == 503
    assert answer.get_json()["error"].startswith("PostgreSQL is unavailable")


# -- the history -------------------------------------------------------------------------------


@BOTH_STATES
def test_the_history_holds_what_ran_between_two_snapshots(
    app, collect, client, headers, pg_connections
):
    conn = pg_connections()
    name, sql = marker(conn)
    run(conn, sql, times=2)
    first = collect()
    assert first.moved == 0  # nothing to measure from yet
    run(conn, sql, times=5)
    collect()
    [total] = totals(app, name)
    assert total["calls"] == 5
    assert total["datname"] == "postgres" and total["rolname"] == "postgres"
    answer = client.get("/statements/history", headers=headers)
    assert answer.status_code == 200
    body = answer.get_json()
    assert body["snapshots"] == 2
    [row] = [row for row in body["data"] if reads(row["query"], name)]
    assert row["calls"] == 5 and row["total_time"] == row["total_exec_time"] > 0
    assert row["hit_ratio"] is None or 0 <= row["hit_ratio"] <= 100


def test_the_history_window_sums_the_snapshots_in_it(app, collect, client, headers, pg_connections):
    conn = pg_connections()
    name, sql = marker(conn)
    run(conn, sql)
    hour = datetime.timedelta(hours=1)
    now = state.utcnow().replace(microsecond=0)
    collect(now - 3 * hour)
    run(conn, sql, times=2)
    collect(now - 2 * hour)
    run(conn, sql, times=4)
    collect(now - hour)
    start = (now - 2 * hour).strftime(MOMENT)  # after the snapshot taken then
    answer = client.get(f"/statements/history?start={start}", headers=headers).get_json()
    assert answer["snapshots"] == 1
    assert [row["calls"] for row in answer["data"] if reads(row["query"], name)] == [4]
    end = (now - 90 * datetime.timedelta(minutes=1)).strftime(MOMENT)
    answer = client.get(f"/statements/history?end={end}", headers=headers).get_json()
    assert [row["calls"] for row in answer["data"] if reads(row["query"], name)] == [2]
    assert answer["snapshots"] == 2


@pytest.mark.parametrize(
    "query, status, error",
    [
        ("start=yesterday", 406, "Parameter 'start' is malformed."),
        ("end=2026-02-30T00:00:00Z", 406, "Parameter 'end' is malformed."),
        ("start=2026-01-02T00:00:00Z&end=2026-01-01T00:00:00Z", 400, "start is after end."),
    ],
)
def test_a_bad_window_is_refused(client, headers, query, status, error):
    answer = client.get(f"/statements/history?{query}", headers=headers)
    assert answer.status_code == status
    assert answer.get_json() == {"error": error}


@BOTH_STATES
def test_a_reset_counts_what_ran_since_it(app, collect, pg_connections):
    conn = pg_connections()
    name, sql = marker(conn)
    collect()
    run(conn, sql, times=4)
    collect()
    run(conn, "SELECT pg_stat_statements_reset()")
    run(conn, sql, times=2)
    third = collect()
    [total] = totals(app, name)
    assert total["calls"] == 6  # 4, then 2 after the reset: nothing lost, nothing negative
    with app.app_context():
        deltas = [
            delta.calls
            for delta in StatementDelta.select()
            .join(Statement)
            .where(Statement.query == sql)
            .order_by(StatementDelta.snapshot)
        ]
    assert deltas == [4, 2]
    assert third.stats_reset is not None


def test_only_statements_that_ran_get_a_row(app, collect, pg_connections):
    conn = pg_connections()
    (quiet, quiet_sql), (busy, busy_sql) = marker(conn), marker(conn)
    run(conn, quiet_sql)
    run(conn, busy_sql)
    collect()
    run(conn, busy_sql)
    second = collect()
    assert totals(app, quiet) == []
    assert [row["calls"] for row in totals(app, busy)] == [1]
    assert 0 < second.moved < second.statements


def test_a_text_is_stored_once_and_read_for_new_statements_only(app, collect, pg_connections):
    conn = pg_connections()
    name, sql = marker(conn)
    collect()
    for _ in range(3):
        run(conn, sql)
        collect()
    with app.app_context():
        texts = [
            s.query
            for s in Statement.select().where(
                Statement.query.startswith(f"SELECT count(*) FROM {name}")
            )
        ]
    assert texts == [sql]
    # Once the collector's own statements are known, a snapshot reads no text.
    collect()
    assert collect().new == 0
    [total] = totals(app, name)
    assert total["calls"] == 3


def test_an_evicted_statement_counts_again_when_it_comes_back(own_cluster, app_on):
    restart_with(own_cluster, **{"pg_stat_statements.max": "100"})
    app = app_on(own_cluster)
    conn = own_cluster.connect()
    name, sql = marker(conn)
    wide = wide_table(conn)

    def snapshot():
        with app.app_context():
            return statements.snapshot(postgres.pool)

    def present():
        with conn.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_stat_statements WHERE query ~ %s", (name,))
            return cursor.fetchone()[0] > 0

    try:
        snapshot()
        run(conn, sql, times=3)
        snapshot()
        # More distinct statements than the view keeps, until it is evicted.
        for round_ in range(20):
            for number in range(1 + round_ * 150, 151 + round_ * 150):
                run(conn, f"SELECT c{number % 1000 + 1} FROM {wide}")
            if not present():
                break
        assert not present()
        gone = snapshot()
        assert gone.statements <= 100
        run(conn, sql, times=2)
        snapshot()
    finally:
        conn.close()
    [total] = totals(app, name)
    # 3 before, 2 after it came back: its new counter is all new, not 2 - 3.
    assert total["calls"] == 5
    with app.app_context():
        assert Statement.select().where(Statement.query == sql).count() == 1


def test_the_budget_drops_the_oldest_snapshots_first(app, collect, pg_connections):
    conn = pg_connections()
    # Two thousand distinct statements, run again before each snapshot: each
    # snapshot stores two thousand deltas.
    busy = wide_table(conn)
    block = (
        "DO $$ BEGIN FOR i IN 1..1000 LOOP"
        f" EXECUTE format('SELECT c%s FROM {busy}', i);"
        f" EXECUTE format('SELECT max(c%s) FROM {busy}', i); END LOOP; END $$"
    )
    now = state.utcnow()
    taken = []
    for number in range(6):
        run(conn, block)
        moment = now - datetime.timedelta(minutes=6 - number)
        taken.append(collect(moment).id)  # within the default budget
    with app.app_context():
        before = statements.estimated_bytes()
        budget = int(before // statements.MB)  # a little less than it takes
        assert budget >= 1
        dropped = statements.trim({**app.config["SENTINEL"], "statements_budget": budget}, now)
        after = statements.estimated_bytes()
        kept = [s.id for s in StatementSnapshot.select().order_by(StatementSnapshot.taken_at)]
    assert dropped > 0 and after <= budget * statements.MB
    assert kept == taken[dropped:]  # the oldest went, the newest stayed
    # What is left still answers: the newest window has the busy statements.
    assert len(totals(app, busy, now - datetime.timedelta(minutes=2))) == 2000


@BOTH_STATES
def test_snapshots_older_than_the_retention_go(app, collect, pg_connections):
    conn = pg_connections()
    name, sql = marker(conn)
    now = state.utcnow()
    collect(now - datetime.timedelta(hours=3))
    run(conn, sql)
    collect(now - datetime.timedelta(hours=2))
    run(conn, sql, times=2)
    collect(now, statements_retention=3600)
    with app.app_context():
        assert StatementSnapshot.select().count() == 1
        assert (
            StatementDelta.select()
            .join(StatementSnapshot)
            .where(StatementSnapshot.taken_at < now)
            .count()
            == 0
        )
    assert [row["calls"] for row in totals(app, name)] == [2]


def test_the_worker_takes_snapshots(app, sentinel_env, tmp_path, pg_connections):
    conn = pg_connections()
    name, sql = marker(conn)
    env = {**sentinel_env, "SENTINEL_STATEMENTS_INTERVAL": "10"}
    log = tmp_path / "worker.log"
    with open(log, "wb") as output:
        worker = subprocess.Popen(
            [sys.executable, "-m", "sentinel", "worker"], env=env, stdout=output, stderr=output
        )

    def snapshots():
        with app.app_context():
            count = StatementSnapshot.select().count()
        state.database.close()
        return count

    try:
        wait_for(lambda: snapshots() >= 1, 30, step=0.2, what="the first snapshot")
        run(conn, sql, times=3)
        wait_for(lambda: snapshots() >= 2, 30, step=0.2, what="the second snapshot")
    finally:
        worker.terminate()
        worker.wait(30)
    assert "Traceback" not in log.read_text()
    assert [row["calls"] for row in totals(app, name)] == [3]
