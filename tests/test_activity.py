"""The Activity API against real backends: sleeping, idle, writing, waiting on
real locks in one database or another, cancelled and terminated for real."""

import os
import re
import threading
import time
import uuid
from urllib.parse import urlsplit

import psycopg2
import pytest
import redis
from polling import wait_for

from sentinel import create_app, procfs, samples
from sentinel.core import notifications
from sentinel.plugins.activity import activity
from sentinel.samples import SampleStore

ROW_KEYS = [
    "pid",
    "database",
    "client",
    "duration",
    "wait",
    "user",
    "state",
    "query",
    "application_name",
    "iow",
    "read_s",
    "write_s",
    "cpu",
    "memory",
]
LOCK_ROW_KEYS = [
    "pid",
    "database",
    "user",
    "mode",
    "type",
    "relation",
    "duration",
    "state",
    "query",
    "iow",
    "read_s",
    "write_s",
    "cpu",
    "memory",
]
NODE_KEYS = [
    "pid",
    "database",
    "user",
    "state",
    "query",
    "duration",
    "xact_age",
    "wait_event_type",
    "wait_event",
    "locks",
    "blocking",
]
RATE = re.compile(r"\d+\.\d\d[BKMGTPEZY]")


class Backends:
    """Real client backends for one test: idle ones, and ones running a
    statement in a thread (sleeping, writing, waiting for a lock). Whatever
    still runs is cancelled when the test ends."""

    def __init__(self, connect, cluster):
        self.connect = connect
        self.cluster = cluster
        self.observer = connect()
        self.running = []
        self.opened = []
        self.tables = []

    def table(self, dbname="postgres"):
        """A new table with two rows, dropped once the test's backends are gone."""
        name = f"activity_{uuid.uuid4().hex[:10]}"
        self.cluster.execute(f"CREATE TABLE {name} (id int PRIMARY KEY, value text)", dbname=dbname)
        self.cluster.execute(f"INSERT INTO {name} VALUES (1, 'one'), (2, 'two')", dbname=dbname)
        self.tables.append((dbname, name))
        return name

    def open(self, dbname="postgres", autocommit=True, **kwargs):
        conn = self.connect(dbname, autocommit=autocommit, **kwargs)
        self.opened.append(conn)
        return conn

    def execute(self, conn, sql):
        with conn.cursor() as cursor:
            cursor.execute(sql)

    def start(self, sql, conn=None, dbname="postgres"):
        """Run `sql` on `conn` (a new connection by default) without waiting for it."""
        conn = conn or self.open(dbname)

        def run():
            try:
                self.execute(conn, sql)
            except psycopg2.Error:
                pass  # cancelled or terminated: what the test or its end does

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        self.running.append((conn, thread))
        return conn

    def activity(self, pid):
        with self.observer.cursor() as cursor:
            cursor.execute(
                "SELECT state, wait_event_type, query FROM pg_stat_activity WHERE pid = %s",
                (pid,),
            )
            return cursor.fetchone()

    def sleeping(self, seconds=30, dbname="postgres", **kwargs):
        conn = self.start(f"SELECT pg_sleep({seconds})", conn=self.open(dbname, **kwargs))
        wait_for(lambda: self.is_running(conn, "pg_sleep"), what="pg_sleep to run")
        return conn

    def is_running(self, conn, text):
        row = self.activity(conn.get_backend_pid())
        return row is not None and row[0] == "active" and text in row[2]

    def waiting(self, sql, conn=None, dbname="postgres"):
        """Start `sql`, which must end up waiting for a lock, and wait until it
        does. LOCK TABLE gets a connection in a transaction, as it needs one."""
        if conn is None and sql.startswith("LOCK"):
            conn = self.open(dbname, autocommit=False)
        conn = self.start(sql, conn=conn, dbname=dbname)
        pid = conn.get_backend_pid()
        wait_for(lambda: (self.activity(pid) or (None, None))[1] == "Lock", what=f"{sql} to wait")
        return conn

    def alive(self, pid):
        return self.activity(pid) is not None

    def close(self):
        for conn, _ in self.running:
            if not conn.closed:
                conn.cancel()
        for _, thread in self.running:
            thread.join(10)
        for conn in self.opened:
            conn.close()  # ends the lock holders' transactions
        for dbname, name in self.tables:
            self.cluster.execute(f"DROP TABLE IF EXISTS {name}", dbname=dbname)


@pytest.fixture
def backends(pg_connections, pg_cluster):
    backends = Backends(pg_connections, pg_cluster)
    yield backends
    backends.close()


@pytest.fixture
def table(backends):
    return backends.table()


@pytest.fixture(scope="module")
def other_database(pg_cluster):
    name = f"activity_other_{uuid.uuid4().hex[:8]}"
    pg_cluster.execute(f'CREATE DATABASE "{name}"')
    yield name
    pg_cluster.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
    )
    pg_cluster.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def state_url(request):
    """SQLite, unless a test asks for its state in PostgreSQL (indirect parametrize)."""
    return request.getfixturevalue(f"{getattr(request, 'param', 'sqlite')}_state")


@pytest.fixture
def headers(auth):
    return auth.headers()


def get_rows(client, headers, path="/activity"):
    answer = client.get(path, headers=headers)
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()["rows"]


def row_of(rows, pid):
    found = [row for row in rows if row["pid"] == pid]
    assert len(found) == 1, f"pid {pid} in {rows}"
    return found[0]


def messages(client, headers):
    return [item["message"] for item in client.get("/notifications", headers=headers).json]


def sentinel_pids(pg_cluster):
    return {
        pid
        for (pid,) in pg_cluster.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = 'sentinel'"
        )
    }


# -- GET /activity ---------------------------------------------------------------------------


def test_a_sleeping_backend_is_listed_as_the_agent_shapes_it(client, headers, backends):
    pid = backends.sleeping().get_backend_pid()
    row = row_of(get_rows(client, headers), pid)
    assert list(row) == ROW_KEYS
    assert row["database"] == "postgres"
    assert row["user"] == "postgres"
    assert row["client"] == "127.0.0.1"
    assert row["state"] == "active"
    assert row["query"] == "SELECT pg_sleep(30)"
    assert row["wait"] == "N"
    assert row["iow"] in ("Y", "N")
    assert isinstance(row["duration"], float) and row["duration"] >= 0
    assert round(row["duration"], 2) == row["duration"]
    assert RATE.fullmatch(row["read_s"]) and RATE.fullmatch(row["write_s"])
    assert isinstance(row["cpu"], float) and 0 <= row["cpu"] <= 100
    assert isinstance(row["memory"], float) and 0 < row["memory"] < 100


def test_a_unix_socket_client_has_a_null_client(client, headers, backends, pg_cluster):
    conn = backends.open(host=str(pg_cluster.sock))
    backends.execute(conn, "SELECT 1")
    assert row_of(get_rows(client, headers), conn.get_backend_pid())["client"] is None


def test_a_backend_that_never_ran_a_query_is_listed(client, headers, backends):
    conn = backends.open()
    row = row_of(get_rows(client, headers), conn.get_backend_pid())
    assert row["state"] == "idle"
    assert row["query"] == ""
    assert isinstance(row["duration"], float) and row["duration"] >= 0


def test_client_backends_but_the_one_asking_are_listed(client, headers, backends, pg_cluster):
    client.get("/activity", headers=headers)  # the pool now holds its one connection
    (asking,) = sentinel_pids(pg_cluster)
    pids = {row["pid"] for row in get_rows(client, headers)}
    others = {
        pid
        for (pid,) in pg_cluster.execute(
            "SELECT pid FROM pg_stat_activity WHERE backend_type <> 'client backend'"
        )
    }
    assert others and not pids & others
    assert asking not in pids
    assert backends.observer.get_backend_pid() in pids


@pytest.mark.parametrize("name", ["sentinel", "sentinel-state"])
def test_a_client_named_like_sentinel_is_listed_under_that_name(client, headers, backends, name):
    pid = backends.sleeping(application_name=name).get_backend_pid()
    row = row_of(get_rows(client, headers), pid)
    assert (row["query"], row["application_name"]) == ("SELECT pg_sleep(30)", name)


def test_another_sentinels_connections_are_listed(client, headers, settings, pg_cluster):
    other = create_app(settings)  # another web worker, or the worker
    try:
        before = sentinel_pids(pg_cluster)
        assert other.test_client().get("/activity", headers=headers).status_code == 200
        (theirs,) = sentinel_pids(pg_cluster) - before
        row = row_of(get_rows(client, headers), theirs)
        assert (row["application_name"], row["state"]) == ("sentinel", "idle")
    finally:
        other.extensions["sentinel.postgres"].close()


def test_rows_come_longest_running_first(client, headers, backends):
    backends.sleeping()
    backends.open()
    durations = [row["duration"] for row in get_rows(client, headers)]
    assert len(durations) >= 3
    assert durations == sorted(durations, reverse=True)


def test_backends_of_two_databases_are_listed_with_their_database(
    client, headers, backends, other_database
):
    here = backends.sleeping().get_backend_pid()
    there = backends.sleeping(dbname=other_database).get_backend_pid()
    rows = get_rows(client, headers)
    assert row_of(rows, here)["database"] == "postgres"
    assert row_of(rows, there)["database"] == other_database


def written_bytes(pid):
    with open(f"/proc/{pid}/io") as handle:
        return int(re.search(r"write_bytes: (\d+)", handle.read()).group(1))


def no_sleeping(*args):
    raise AssertionError("a request slept")


def test_a_writing_backend_shows_its_write_rate_on_the_next_call(
    client, headers, backends, table, monkeypatch
):
    # generate_series in the select list streams rows (and is cancelled at
    # once at the end); in FROM it would first materialise them all.
    writer = backends.start(
        f"INSERT INTO {table} SELECT generate_series(3, 50000000), repeat('x', 100)"
    )
    pid = writer.get_backend_pid()
    start = written_bytes(pid)
    wait_for(lambda: written_bytes(pid) > start + 2**20, what="the writer to write")

    # The rate comes from the previous call's reading: no request sleeps for it.
    def look():
        with monkeypatch.context() as patch:
            patch.setattr(time, "sleep", no_sleeping)
            return row_of(get_rows(client, headers), pid)

    first = look()
    # On a loaded machine the writer may not run at all between two quick
    # calls: let it write again first, outside the requests.
    seen = written_bytes(pid)
    wait_for(lambda: written_bytes(pid) > seen, what="the writer to write again")
    second = look()
    assert first["write_s"] == "0.00B"  # first sight of this backend: no rate yet
    assert second["write_s"] != "0.00B"
    assert RATE.fullmatch(second["write_s"])


def test_an_idle_backend_keeps_its_figures_between_two_looks(client, headers, backends):
    pid = backends.open().get_backend_pid()
    first = row_of(get_rows(client, headers), pid)
    second = row_of(get_rows(client, headers), pid)
    assert second["state"] == "idle"
    assert second["memory"] == first["memory"] > 0
    assert (second["cpu"], second["read_s"], second["write_s"]) == (0.0, "0.00B", "0.00B")


def test_a_backend_that_worked_between_two_looks_shows_it_though_idle_again(
    client, headers, backends, table
):
    conn = backends.open()
    pid = conn.get_backend_pid()
    assert row_of(get_rows(client, headers), pid)["state"] == "idle"
    # About 30 MB of WAL, written by the backend itself: more than wal_buffers.
    backends.execute(
        conn, f"INSERT INTO {table} SELECT g, repeat('x', 60) FROM generate_series(3, 300000) g"
    )
    row = row_of(get_rows(client, headers), pid)
    assert row["state"] == "idle"
    assert row["write_s"] != "0.00B"
    assert RATE.fullmatch(row["write_s"])


def plant(app, pid, start, at):
    """A previous reading of `pid`, taken at `at`, as a process started at
    `start` (ticks since boot) left it: every counter at zero, below the
    backend's real ones."""
    settings = app.config["SENTINEL"]
    identity = app.extensions["sentinel.postgres"].identity(settings["hostname"])
    store = SampleStore(redis.Redis.from_url(settings["redis_url"]))
    reading = {"at": at, "start": start, "cpu": 0, "read": 0, "write": 0, "rss": 0}
    name = samples.key(identity, "activity", "backends")
    store.put(name, {"at": at, "backends": {str(pid): reading}})
    store.connection.close()


def test_a_sample_of_an_earlier_process_with_the_same_pid_is_not_used(
    app, client, headers, backends, table
):
    conn = backends.open()
    pid = conn.get_backend_pid()
    before_writing = time.time()
    backends.execute(
        conn, f"INSERT INTO {table} SELECT g, repeat('x', 60) FROM generate_series(3, 300000) g"
    )
    assert written_bytes(pid) > 0
    start = procfs.read(pid).start

    plant(app, pid, start - 1, before_writing)  # another process, which had this pid before
    row = row_of(get_rows(client, headers), pid)
    assert (row["read_s"], row["write_s"]) == ("0.00B", "0.00B")

    plant(app, pid, start, before_writing)  # the same process: its writes show as a rate
    row = row_of(get_rows(client, headers), pid)
    assert row["write_s"] != "0.00B"


def test_a_process_that_cannot_be_read_gets_zeros(redis_url):
    store = SampleStore(redis.Redis.from_url(redis_url))
    gone = 2**22 + 1  # above any pid the kernel hands out here (pid_max)
    figures = activity.os_figures(store, "test:activity", [gone])
    store.connection.close()
    assert figures == {gone: activity.NO_FIGURES}


def test_human_rates_are_written_as_the_agent_writes_them():
    assert activity.human_rate(0) == "0.00B"
    assert activity.human_rate(1023.4) == "1023.40B"
    assert activity.human_rate(1536) == "1.50K"
    assert activity.human_rate(3 * 1024**2) == "3.00M"
    assert activity.human_rate(2.25 * 1024**3) == "2.25G"


# -- waiting and blocking --------------------------------------------------------------------


def test_a_table_lock_conflict_shows_in_all_three_lists(client, headers, backends, table):
    holder = backends.open(autocommit=False)
    backends.execute(holder, f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
    waiter = backends.waiting(f"SELECT count(*) FROM {table}")

    running = get_rows(client, headers)
    assert row_of(running, waiter.get_backend_pid())["wait"] == "Y"
    assert row_of(running, holder.get_backend_pid())["wait"] == "N"

    waiting = row_of(get_rows(client, headers, "/activity/waiting"), waiter.get_backend_pid())
    assert list(waiting) == LOCK_ROW_KEYS
    assert (waiting["relation"], waiting["type"], waiting["mode"]) == (
        table,
        "relation",
        "AccessShareLock",
    )
    assert waiting["state"] == "active"
    assert waiting["query"] == f"SELECT count(*) FROM {table}"

    blocking = row_of(get_rows(client, headers, "/activity/blocking"), holder.get_backend_pid())
    assert list(blocking) == LOCK_ROW_KEYS
    assert (blocking["relation"], blocking["type"], blocking["mode"]) == (
        table,
        "relation",
        "AccessExclusiveLock",
    )
    assert blocking["state"] == "idle in transaction"
    assert isinstance(blocking["duration"], float)


def test_a_waiter_keeps_its_figures_between_two_looks(client, headers, backends, table):
    holder = backends.open(autocommit=False)
    backends.execute(holder, f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
    pid = backends.waiting(f"SELECT count(*) FROM {table}").get_backend_pid()
    first = row_of(get_rows(client, headers, "/activity/waiting"), pid)
    second = row_of(get_rows(client, headers, "/activity/waiting"), pid)
    assert second["memory"] == first["memory"] > 0
    assert (second["cpu"], second["read_s"], second["write_s"]) == (0.0, "0.00B", "0.00B")


def test_a_waiter_that_worked_between_two_looks_shows_it_though_waiting_again(
    client, headers, backends, table
):
    other = backends.table()
    first_holder = backends.open(autocommit=False)
    backends.execute(first_holder, f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
    second_holder = backends.open(autocommit=False)
    backends.execute(second_holder, f"LOCK TABLE {other} IN ACCESS EXCLUSIVE MODE")
    # Waits for the first table, then writes about 30 MB of WAL (more than
    # wal_buffers, so the backend writes it itself), then waits for the other.
    waiter = backends.waiting(
        f"LOCK TABLE {table} IN ACCESS SHARE MODE;"
        f" INSERT INTO {table} SELECT g, repeat('x', 60) FROM generate_series(3, 300000) g;"
        f" LOCK TABLE {other} IN ACCESS SHARE MODE"
    )
    pid = waiter.get_backend_pid()

    def awaited():
        with backends.observer.cursor() as cursor:
            cursor.execute(
                "SELECT relation::regclass::text FROM pg_locks WHERE pid = %s AND NOT granted",
                (pid,),
            )
            return [name for (name,) in cursor.fetchall()]

    assert row_of(get_rows(client, headers, "/activity/waiting"), pid)["relation"] == table
    first_holder.rollback()
    wait_for(lambda: awaited() == [other], what="the waiter to wait for the other table")
    row = row_of(get_rows(client, headers, "/activity/waiting"), pid)
    assert row["relation"] == other
    assert row["write_s"] != "0.00B"
    assert RATE.fullmatch(row["write_s"])


def test_a_row_lock_conflict_has_a_blank_relation(client, headers, backends, table):
    holder = backends.open(autocommit=False)
    backends.execute(holder, f"UPDATE {table} SET value = 'held' WHERE id = 1")
    waiter = backends.waiting(f"UPDATE {table} SET value = 'waits' WHERE id = 1")

    waiting = row_of(get_rows(client, headers, "/activity/waiting"), waiter.get_backend_pid())
    assert (waiting["relation"], waiting["type"], waiting["mode"]) == (
        " ",
        "transactionid",
        "ShareLock",
    )
    blocking = row_of(get_rows(client, headers, "/activity/blocking"), holder.get_backend_pid())
    assert (blocking["relation"], blocking["type"], blocking["mode"]) == (
        " ",
        "transactionid",
        "ExclusiveLock",
    )


def test_a_lock_in_another_database_is_named(client, headers, backends, pg_cluster, other_database):
    name = backends.table(other_database)
    holder = backends.open(other_database, autocommit=False)
    backends.execute(holder, f"LOCK TABLE {name} IN ACCESS EXCLUSIVE MODE")
    waiter = backends.waiting(f"SELECT * FROM {name}", dbname=other_database)

    waiting = row_of(get_rows(client, headers, "/activity/waiting"), waiter.get_backend_pid())
    assert (waiting["database"], waiting["relation"]) == (other_database, name)
    blocking = row_of(get_rows(client, headers, "/activity/blocking"), holder.get_backend_pid())
    assert (blocking["database"], blocking["relation"]) == (other_database, name)


def test_without_lock_conflicts_the_lock_lists_are_empty(client, headers, backends):
    backends.sleeping()
    assert get_rows(client, headers, "/activity/waiting") == []
    assert get_rows(client, headers, "/activity/blocking") == []
    assert client.get("/activity/locktree", headers=headers).get_json() == {"roots": []}


# -- the lock tree -----------------------------------------------------------------------


def chain_of_three(backends):
    """A holds t1; B holds t2 and waits for t1; C waits for t2."""
    first, second = backends.table(), backends.table()
    a = backends.open(autocommit=False)
    backends.execute(a, f"LOCK TABLE {first} IN ACCESS EXCLUSIVE MODE")
    b = backends.open(autocommit=False)
    backends.execute(b, f"LOCK TABLE {second} IN ACCESS EXCLUSIVE MODE")
    backends.waiting(f"LOCK TABLE {first} IN ACCESS SHARE MODE", conn=b)
    c = backends.waiting(f"SELECT * FROM {second}")
    return (a, b, c), (first, second)


def test_the_lock_tree_follows_a_chain_of_three(client, headers, backends, pg_cluster):
    (a, b, c), (first, second) = chain_of_three(backends)
    answer = client.get("/activity/locktree", headers=headers)
    assert answer.status_code == 200
    roots = answer.get_json()["roots"]
    assert [root["pid"] for root in roots] == [a.get_backend_pid()]
    root = roots[0]
    assert list(root) == NODE_KEYS
    assert root["locks"] == [{"relation": first, "type": "relation", "mode": "AccessExclusiveLock"}]
    assert root["state"] == "idle in transaction"
    assert isinstance(root["xact_age"], float) and root["xact_age"] >= 0
    assert root["wait_event_type"] == "Client"

    [middle] = root["blocking"]
    assert middle["pid"] == b.get_backend_pid()
    assert middle["wait_event_type"] == "Lock"
    assert middle["wait_event"] == "relation"
    assert middle["locks"] == [
        {"relation": second, "type": "relation", "mode": "AccessExclusiveLock"}
    ]

    [last] = middle["blocking"]
    assert last["pid"] == c.get_backend_pid()
    assert last["query"] == f"SELECT * FROM {second}"
    assert last["locks"] == [] and last["blocking"] == []


def test_a_backend_behind_two_roots_is_under_both(client, headers, backends, table):
    holders = [backends.open(autocommit=False) for _ in range(2)]
    for holder in holders:
        backends.execute(holder, f"LOCK TABLE {table} IN SHARE MODE")
    waiter = backends.waiting(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
    roots = client.get("/activity/locktree", headers=headers).get_json()["roots"]
    assert sorted(root["pid"] for root in roots) == sorted(h.get_backend_pid() for h in holders)
    for root in roots:
        assert [node["pid"] for node in root["blocking"]] == [waiter.get_backend_pid()]
        assert root["locks"] == [{"relation": table, "type": "relation", "mode": "ShareLock"}]


def test_a_session_lock_holder_outside_a_transaction_has_no_xact_age(client, headers, backends):
    key = int(uuid.uuid4().int % 2**31)
    holder = backends.open()
    backends.execute(holder, f"SELECT pg_advisory_lock({key})")
    waiter = backends.waiting(f"SELECT pg_advisory_lock({key})")
    roots = client.get("/activity/locktree", headers=headers).get_json()["roots"]
    [root] = [root for root in roots if root["pid"] == holder.get_backend_pid()]
    assert root["xact_age"] is None
    assert root["locks"] == [{"relation": " ", "type": "advisory", "mode": "ExclusiveLock"}]
    assert [node["pid"] for node in root["blocking"]] == [waiter.get_backend_pid()]
    assert root["blocking"][0]["xact_age"] >= 0


def test_a_queue_of_waiters_stays_one_level_deep(client, headers, backends, table):
    holder = backends.open(autocommit=False)
    backends.execute(holder, f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
    # Each waiter is also blocked by every conflicting waiter queued before it.
    waiters = [backends.waiting(f"LOCK TABLE {table} IN EXCLUSIVE MODE") for _ in range(4)]
    roots = client.get("/activity/locktree", headers=headers).get_json()["roots"]
    [root] = roots
    assert root["pid"] == holder.get_backend_pid()
    assert sorted(node["pid"] for node in root["blocking"]) == sorted(
        w.get_backend_pid() for w in waiters
    )
    assert all(node["blocking"] == [] for node in root["blocking"])


# -- kill and cancel -----------------------------------------------------------------------


def test_kill_terminates_a_backend_and_records_it(client, headers, backends):
    pid = backends.sleeping().get_backend_pid()
    answer = client.post("/activity/kill", json={"pids": [pid]}, headers=headers)
    assert answer.status_code == 200
    assert answer.get_json() == {"backends": [{"pid": pid, "killed": True}]}
    wait_for(lambda: not backends.alive(pid), what="the backend to end")
    assert messages(client, headers)[0] == f"Backend {pid} terminated"


def test_kill_refuses_what_is_not_a_client_backend_and_nothing_dies(
    client, headers, backends, pg_cluster
):
    # The pool's one connection: the backend that will answer the kill.
    client.get("/activity", headers=headers)
    postmaster = int((pg_cluster.data / "postmaster.pid").read_text().split()[0])
    walwriter, launcher = (
        pg_cluster.execute(
            "SELECT pid FROM pg_stat_activity WHERE backend_type = %s", (backend_type,)
        )[0][0]
        for backend_type in ("walwriter", "autovacuum launcher")
    )
    own = min(sentinel_pids(pg_cluster))
    pids = [postmaster, 999999, walwriter, launcher, own]
    answer = client.post("/activity/kill", json={"pids": pids}, headers=headers)
    assert answer.get_json() == {"backends": [{"pid": pid, "killed": False} for pid in pids]}
    os.kill(postmaster, 0)  # still there
    assert all(backends.alive(pid) for pid in (walwriter, launcher, own))
    assert messages(client, headers) == ["Login"]


@pytest.mark.parametrize("name", ["sentinel", "sentinel-state"])
def test_a_client_named_like_sentinel_can_be_terminated(client, headers, backends, name):
    pid = backends.sleeping(application_name=name).get_backend_pid()
    answer = client.post("/activity/kill", json={"pids": [pid]}, headers=headers)
    assert answer.get_json() == {"backends": [{"pid": pid, "killed": True}]}
    wait_for(lambda: not backends.alive(pid), what="the backend to end")


@pytest.mark.parametrize("name", ["sentinel", "sentinel-state"])
def test_a_client_named_like_sentinel_can_be_cancelled(client, headers, backends, name):
    pid = backends.sleeping(application_name=name).get_backend_pid()
    answer = client.post("/activity/cancel", json={"pids": [pid]}, headers=headers)
    assert answer.get_json() == {"backends": [{"pid": pid, "cancelled": True}]}
    wait_for(lambda: (backends.activity(pid) or ("gone",))[0] == "idle", what="the query to end")


def test_another_sentinels_connection_can_be_terminated_and_it_recovers(
    client, headers, settings, pg_cluster
):
    other = create_app(settings)
    try:
        before = sentinel_pids(pg_cluster)
        other.test_client().get("/activity", headers=headers)
        (theirs,) = sentinel_pids(pg_cluster) - before
        answer = client.post("/activity/kill", json={"pids": [theirs]}, headers=headers)
        assert answer.get_json() == {"backends": [{"pid": theirs, "killed": True}]}
        wait_for(lambda: theirs not in sentinel_pids(pg_cluster), what="the backend to end")
        assert other.test_client().get("/activity", headers=headers).status_code == 200
    finally:
        other.extensions["sentinel.postgres"].close()


@pytest.mark.parametrize("state_url", ["postgres"], indirect=True)
def test_kill_spares_the_state_connection_it_records_through(
    client, headers, pg_cluster, state_url
):
    client.get("/profile", headers=headers)  # the state's one pooled connection is open
    ((state_pid,),) = pg_cluster.execute(
        "SELECT pid FROM pg_stat_activity WHERE datname = %s", (urlsplit(state_url).path[1:],)
    )
    answer = client.post("/activity/kill", json={"pids": [state_pid]}, headers=headers)
    assert answer.get_json() == {"backends": [{"pid": state_pid, "killed": False}]}
    assert pg_cluster.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (state_pid,))
    assert messages(client, headers) == ["Login"]


def test_a_repeated_pid_is_terminated_once(client, headers, backends):
    pid = backends.sleeping().get_backend_pid()
    answer = client.post("/activity/kill", json={"pids": [pid, pid]}, headers=headers)
    assert answer.get_json() == {
        "backends": [{"pid": pid, "killed": True}, {"pid": pid, "killed": False}]
    }
    assert messages(client, headers).count(f"Backend {pid} terminated") == 1


def test_an_empty_list_terminates_nothing(client, headers):
    answer = client.post("/activity/kill", json={"pids": []}, headers=headers)
    assert answer.get_json() == {"backends": []}


def test_cancel_ends_the_query_and_keeps_the_backend(client, headers, backends):
    conn = backends.sleeping()
    pid = conn.get_backend_pid()
    answer = client.post("/activity/cancel", json={"pids": [pid]}, headers=headers)
    assert answer.status_code == 200
    assert answer.get_json() == {"backends": [{"pid": pid, "cancelled": True}]}
    wait_for(lambda: (backends.activity(pid) or ("gone",))[0] == "idle", what="the query to end")
    assert messages(client, headers)[0] == f"Query of backend {pid} cancelled"


def test_cancel_refuses_what_is_not_a_client_backend(client, headers, pg_cluster):
    walwriter = pg_cluster.execute(
        "SELECT pid FROM pg_stat_activity WHERE backend_type = 'walwriter'"
    )[0][0]
    answer = client.post("/activity/cancel", json={"pids": [walwriter, 999999]}, headers=headers)
    assert answer.get_json() == {
        "backends": [{"pid": walwriter, "cancelled": False}, {"pid": 999999, "cancelled": False}]
    }


@pytest.mark.parametrize("path", ["/activity/kill", "/activity/cancel"])
@pytest.mark.parametrize(
    "body, error",
    [
        ({}, "Parameter 'pids' not sent."),
        ({"pid": [1]}, "Parameter 'pids' not sent."),
        ({"pids": 123}, "Parameter 'pids' is malformed."),
        ({"pids": "123"}, "Parameter 'pids' is malformed."),
        ({"pids": None}, "Parameter 'pids' is malformed."),
        ({"pids": ["123"]}, "Parameter 'pids' is malformed."),
        ({"pids": [1.5]}, "Parameter 'pids' is malformed."),
        ({"pids": [True]}, "Parameter 'pids' is malformed."),
        ({"pids": [0]}, "Parameter 'pids' is malformed."),
        ({"pids": [-1]}, "Parameter 'pids' is malformed."),
        ({"pids": [2147483648]}, "Parameter 'pids' is malformed."),
        ({"pids": [99999999999]}, "Parameter 'pids' is malformed."),
        ({"pids": [[1]]}, "Parameter 'pids' is malformed."),
        ([1, 2], "Parameter 'pids' is malformed."),
    ],
)
def test_bad_pids_are_406_and_signal_nothing(client, headers, backends, path, body, error):
    pid = backends.sleeping().get_backend_pid()
    answer = client.post(path, json=body, headers=headers)
    assert answer.status_code == 406
    assert answer.get_json() == {"error": error}
    assert backends.is_running(backends.running[0][0], "pg_sleep")
    assert backends.alive(pid)
    assert messages(client, headers) == ["Login"]


@pytest.mark.parametrize("path", ["/activity/kill", "/activity/cancel"])
@pytest.mark.parametrize("data", ["", "{pids: [1]}", '{"pids": [1],}'])
def test_bad_json_is_400(client, headers, path, data):
    answer = client.post(path, data=data, headers=headers)
    assert answer.status_code == 400
    assert answer.get_json() == {"error": "Invalid json format"}
    assert messages(client, headers) == ["Login"]


# -- authentication ------------------------------------------------------------------------


@pytest.fixture
def keyed(settings):
    app = create_app({**settings, "agent_key": "the-agent-key"})
    yield app.test_client()
    app.extensions["sentinel.postgres"].close()


@pytest.mark.parametrize(
    "path", ["/activity", "/activity/waiting", "/activity/blocking", "/activity/locktree"]
)
def test_read_routes_accept_the_agent_key(keyed, path):
    assert keyed.get(f"{path}?key=the-agent-key").status_code == 200
    assert keyed.get(path, headers={"X-TemBoard-Agent-Key": "the-agent-key"}).status_code == 200
    wrong = keyed.get(f"{path}?key=not-the-key")
    assert wrong.status_code == 401
    assert wrong.get_json() == {"error": "Invalid key"}


@pytest.mark.parametrize("path", ["/activity/kill", "/activity/cancel"])
def test_signalling_needs_a_session_not_the_key(keyed, backends, path):
    pid = backends.sleeping().get_backend_pid()
    answer = keyed.post(f"{path}?key=the-agent-key", json={"pids": [pid]})
    assert answer.status_code == 406
    assert answer.get_json() == {"error": "Parameter 'X-Session' is malformed."}
    assert backends.is_running(backends.running[0][0], "pg_sleep")


@pytest.mark.parametrize(
    "path", ["/activity", "/activity/waiting", "/activity/blocking", "/activity/locktree"]
)
def test_read_routes_need_a_session_or_the_key(client, path):
    answer = client.get(path)
    assert answer.status_code == 406
    assert answer.get_json() == {"error": "Parameter 'X-Session' is malformed."}


# -- PostgreSQL down -------------------------------------------------------------------------


def test_postgresql_down_is_503(settings, own_cluster, make_user):
    app = create_app({**settings, "pg_dsn": own_cluster.dsn()})
    client = app.test_client()
    make_user()
    session = client.post("/login", json={"username": "alice", "password": "alice-password"})
    headers = {"X-Session": session.get_json()["session"]}
    own_cluster.stop()
    try:
        for method, path in [
            ("GET", "/activity"),
            ("GET", "/activity/waiting"),
            ("GET", "/activity/blocking"),
            ("GET", "/activity/locktree"),
            ("POST", "/activity/kill"),
        ]:
            answer = client.open(path, method=method, json={"pids": [1234]}, headers=headers)
            assert answer.status_code == 503, path
            assert answer.get_json()["error"].startswith("PostgreSQL is unavailable")
    finally:
        app.extensions["sentinel.postgres"].close()


# -- the page's JSON endpoints ---------------------------------------------------------------


def signed_in(client, make_user):
    """A test client signed in through the login form, and its CSRF token."""
    username, password = make_user("bob", "bob-password")
    page = client.get("/ui/login").get_data(as_text=True)
    token = re.search(r'<meta name="csrf-token" content="([^"]+)"', page).group(1)
    answer = client.post(
        "/ui/login", data={"username": username, "password": password, "csrf_token": token}
    )
    assert answer.status_code == 302
    return token


def test_page_data_has_the_four_views(client, make_user, backends, pg_cluster):
    (a, b, c), _ = chain_of_three(backends)
    signed_in(client, make_user)
    data = client.get("/ui/activity/data").get_json()
    assert list(data) == ["activity", "waiting", "blocking", "locktree"]
    assert {a.get_backend_pid(), b.get_backend_pid(), c.get_backend_pid()} <= {
        row["pid"] for row in data["activity"]
    }
    assert {row["pid"] for row in data["waiting"]} == {b.get_backend_pid(), c.get_backend_pid()}
    assert {row["pid"] for row in data["blocking"]} == {a.get_backend_pid(), b.get_backend_pid()}
    assert [root["pid"] for root in data["locktree"]] == [a.get_backend_pid()]
    assert all(list(row) == LOCK_ROW_KEYS for row in data["waiting"] + data["blocking"])


def test_page_kill_terminates_and_records_the_signed_in_user(client, make_user, backends):
    token = signed_in(client, make_user)
    pid = backends.sleeping().get_backend_pid()
    answer = client.post("/ui/activity/kill", json={"pids": [pid]}, headers={"X-CSRFToken": token})
    assert answer.get_json() == {"backends": [{"pid": pid, "killed": True}]}
    wait_for(lambda: not backends.alive(pid), what="the backend to end")
    with client.application.app_context():
        latest = notifications.recent(1)[0]
    assert (latest["username"], latest["message"]) == ("bob", f"Backend {pid} terminated")


def test_page_signals_need_the_csrf_token(client, make_user, backends):
    signed_in(client, make_user)
    pid = backends.sleeping().get_backend_pid()
    for path in ("/ui/activity/kill", "/ui/activity/cancel"):
        answer = client.post(path, json={"pids": [pid]})
        assert answer.status_code == 400
    assert backends.is_running(backends.running[0][0], "pg_sleep")


def test_page_data_needs_a_signed_in_user(client):
    answer = client.get("/ui/activity/data", headers={"Accept": "application/json"})
    assert answer.status_code in (302, 401)
