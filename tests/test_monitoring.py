"""The Monitoring plugin: every probe against the shapes temBoard agent 7.11
serves, rates across real stats resets, bloat of a really bloated table, the
collector in a real worker, and PostgreSQL stopped (or a standby) for real."""

import datetime
import json
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pytest
from polling import wait_for

from sentinel import create_app, state
from sentinel.dev import sandbox
from sentinel.extensions import postgres, redis
from sentinel.plugins.monitoring import monitoring, probes
from sentinel.state import MonitoringRun

AGENT_KEY = "monitoring-agent-key-0123456789"
STAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00")
RUN_STAMP = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \+0000")

# Keys and JSON types of each probe's records as temBoard agent 7.11 serves
# them on PostgreSQL 15 (plus measure_interval on temp_files_size_delta, a rate here).
PER_DATABASE = {"dbname": str}
SQL_RECORD = {"port": int, "datetime": str}
HOST_RECORD = {"datetime": str}
LOCK_MODES = (
    "access_share",
    "row_share",
    "row_exclusive",
    "share_update_exclusive",
    "share",
    "share_row_exclusive",
    "exclusive",
    "access_exclusive",
)
SHAPES = {
    "sessions": {
        **PER_DATABASE,
        **dict.fromkeys(
            (
                "active",
                "waiting",
                "idle",
                "idle_in_xact",
                "idle_in_xact_aborted",
                "fastpath",
                "disabled",
                "no_priv",
            ),
            int,
        ),
        **SQL_RECORD,
    },
    "xacts": {**PER_DATABASE, "n_commit": int, "n_rollback": int, **SQL_RECORD},
    "locks": {
        **PER_DATABASE,
        **{key: int for mode in LOCK_MODES for key in (mode, f"waiting_{mode}")},
        "siread": int,
        **SQL_RECORD,
    },
    "blocks": {
        **PER_DATABASE,
        "blks_read": int,
        "blks_hit": int,
        "hitmiss_ratio": float,
        **SQL_RECORD,
    },
    "bgwriter": {
        "checkpoints_timed": int,
        "checkpoints_req": int,
        "checkpoint_write_time": float,
        "checkpoint_sync_time": float,
        "buffers_checkpoint": int,
        "buffers_clean": int,
        "maxwritten_clean": int,
        "buffers_backend": int,
        "buffers_backend_fsync": int,
        "buffers_alloc": int,
        "stats_reset": str,
        **SQL_RECORD,
    },
    "db_size": {**PER_DATABASE, "size": int, **SQL_RECORD},
    "tblspc_size": {"spcname": str, "size": int, **SQL_RECORD},
    "filesystems_size": {"mount_point": str, "device": str, "total": int, "used": int},
    "cpu": {
        "time_user": float,
        "time_system": float,
        "time_idle": float,
        "time_iowait": float,
        "time_steal": float,
        "measure_interval": float,
        "cpu": str,
        **HOST_RECORD,
    },
    "process": {
        "procs_running": int,
        "procs_blocked": int,
        "procs_total": str,
        "measure_interval": float,
        "context_switches": int,
        "forks": int,
        **HOST_RECORD,
    },
    "memory": {
        **dict.fromkeys(
            (
                "mem_total",
                "mem_used",
                "mem_free",
                "mem_buffers",
                "mem_cached",
                "swap_total",
                "swap_used",
            ),
            int,
        ),
        **HOST_RECORD,
    },
    "loadavg": {"load1": str, "load5": str, "load15": str, **HOST_RECORD},
    "wal_files": {
        "port": int,
        "total": int,
        "total_size": float,
        "current_location": str,
        "archive_ready": int,
        "measure_interval": float,
        "written_size": int,
        "datetime": str,
    },
    "temp_files_size_delta": {
        **PER_DATABASE,
        "size": int,
        "port": int,
        "measure_interval": float,
        "datetime": str,
    },
    "heap_bloat": {**PER_DATABASE, "ratio": float, **SQL_RECORD},
    "btree_bloat": {**PER_DATABASE, "ratio": float, **SQL_RECORD},
}
SHAPES["filesystems_size"].update(HOST_RECORD)
RATE_PROBES = ("cpu", "process", "wal_files", "temp_files_size_delta")
PER_DATABASE_PROBES = tuple(name for name, shape in SHAPES.items() if "dbname" in shape)


def datallowconn_databases(pg_cluster):
    rows = pg_cluster.execute("SELECT datname FROM pg_database WHERE datallowconn")
    return {name for (name,) in rows}


@pytest.fixture
def headers(auth):
    return auth.headers()


@pytest.fixture
def get_probe(client, headers):
    def get(name):
        answer = client.get(f"/monitoring/probe/{name}", headers=headers)
        assert answer.status_code == 200, answer.get_data(as_text=True)
        body = answer.get_json()
        assert list(body) == [name]
        return body[name]

    return get


@pytest.fixture
def collect(app):
    """Run the collector as the worker does, in the app's context."""

    def run(**overrides):
        with app.app_context():
            return monitoring.collect_and_store(
                postgres.pool, redis.samples, {**app.config["SENTINEL"], **overrides}
            )

    return run


@pytest.fixture
def new_database(pg_cluster):
    """new_database(prefix) -> name of a fresh database, dropped afterwards."""
    created = []

    def create(prefix="monitoring"):
        name = f"{prefix}_{uuid.uuid4().hex[:8]}"
        pg_cluster.execute(f'CREATE DATABASE "{name}"')
        created.append(name)
        return name

    yield create
    for name in created:
        pg_cluster.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def fill_table(pg_cluster, dbname, keep_one_in=1):
    """A 100,000-row table with a primary key and an index; keep one row in
    `keep_one_in` (deleting the others leaves their space behind), then ANALYZE."""
    conn = pg_cluster.connect(dbname)
    try:
        with conn.cursor() as cursor:
            cursor.execute("CREATE TABLE measures (id int PRIMARY KEY, label text, value numeric)")
            cursor.execute(
                "INSERT INTO measures SELECT g, md5(g::text), g FROM generate_series(1, 100000) g"
            )
            cursor.execute("CREATE INDEX ON measures (lower(label))")
            if keep_one_in > 1:
                cursor.execute("DELETE FROM measures WHERE id %% %s <> 0", (keep_one_in,))
            cursor.execute("ANALYZE measures")
    finally:
        conn.close()


def write_temp_files(pg_cluster):
    """Sort more than work_mem allows in a session of its own, whose exit
    flushes its statistics, so temp_bytes grows for "postgres"."""
    conn = pg_cluster.connect("postgres")
    try:
        with conn.cursor() as cursor:
            cursor.execute("SET work_mem = '64kB'")
            cursor.execute(
                "SELECT count(*) FROM"
                " (SELECT g FROM generate_series(1, 200000) g ORDER BY g DESC) sorted"
            )
    finally:
        conn.close()


def postgres_stat(pg_cluster, column):
    """A pg_stat_database counter of the "postgres" database."""
    rows = pg_cluster.execute(
        f"SELECT {column} FROM pg_stat_database WHERE datname = 'postgres'"  # our own column
    )
    return rows[0][0]


def temp_bytes(pg_cluster):
    return postgres_stat(pg_cluster, "temp_bytes")


def commits(pg_cluster):
    return postgres_stat(pg_cluster, "xact_commit")


def commit_transactions(pg_cluster, count):
    conn = pg_cluster.connect("postgres")
    try:
        with conn.cursor() as cursor:
            for _ in range(count):
                cursor.execute("SELECT 1")
    finally:
        conn.close()


# -- the probes on the API ----------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_every_probe_serves_the_agents_keys_and_types(get_probe, pg_cluster, name):
    if name in RATE_PROBES:
        get_probe(name)  # the first call only takes the sample rates start from
    records = get_probe(name)
    assert records
    for record in records:
        assert {key: type(value) for key, value in record.items()} == SHAPES[name]
        assert STAMP.fullmatch(record["datetime"])
        if "port" in record:
            assert record["port"] == pg_cluster.port


@pytest.mark.parametrize("name", ["replication_lag", "replication_connection"])
def test_replication_probes_answer_nothing_on_a_primary(get_probe, name):
    assert get_probe(name) == []


def test_sql_probe_records_of_one_call_share_one_datetime(get_probe):
    records = get_probe("sessions")
    assert len({record["datetime"] for record in records}) == 1


def test_an_unknown_probe_is_not_found_even_without_a_session(client, headers):
    for request_headers in (headers, {}):
        answer = client.get("/monitoring/probe/nope", headers=request_headers)
        assert answer.status_code == 404
        assert answer.get_json() == {"error": "URL not found."}


def test_probes_accept_the_agent_key(settings):
    app = create_app({**settings, "agent_key": AGENT_KEY})
    try:
        answer = app.test_client().get(f"/monitoring/probe/db_size?key={AGENT_KEY}")
        assert answer.status_code == 200
        assert answer.get_json()["db_size"]
    finally:
        app.extensions["sentinel.postgres"].close()
        state.database.close_all()


def test_probes_need_a_session(client):
    answer = client.get("/monitoring/probe/sessions")
    assert answer.status_code == 406
    assert answer.get_json() == {"error": "Parameter 'X-Session' is malformed."}


@pytest.mark.parametrize("name", PER_DATABASE_PROBES)
def test_per_database_probes_list_every_database_accepting_connections(
    get_probe, pg_cluster, new_database, name
):
    extra = new_database()
    if name in RATE_PROBES:
        get_probe(name)
    names = [record["dbname"] for record in get_probe(name)]
    assert len(names) == len(set(names))
    assert set(names) == datallowconn_databases(pg_cluster)
    assert {extra, "postgres", "template1"} <= set(names)
    assert "template0" not in names


def test_a_backend_queued_on_a_lock_shows_in_sessions_and_locks(
    get_probe, pg_cluster, pg_connections
):
    table = f"locked_{uuid.uuid4().hex[:8]}"
    pg_cluster.execute(f"CREATE TABLE {table} (id int)")
    holder = pg_connections("postgres", autocommit=False)
    holder.cursor().execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
    waiter = pg_connections("postgres")
    blocked = threading.Thread(target=lambda: waiter.cursor().execute(f"SELECT * FROM {table}"))
    blocked.start()
    try:

        def postgres_record(name):
            return next(r for r in get_probe(name) if r["dbname"] == "postgres")

        assert wait_for(lambda: postgres_record("sessions")["waiting"] == 1, 10)
        assert postgres_record("sessions")["idle_in_xact"] >= 1  # the holder
        locks = postgres_record("locks")
        assert locks["waiting_access_share"] == 1
        assert locks["access_exclusive"] >= 1
    finally:
        holder.rollback()
        blocked.join(10)
        pg_cluster.execute(f"DROP TABLE {table}")


# -- rates -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", RATE_PROBES)
def test_rate_probes_answer_nothing_first_then_an_increase_over_an_interval(get_probe, name):
    started = time.time()
    assert get_probe(name) == []
    records = get_probe(name)
    assert records
    for record in records:
        # Measured since the first call's sample, however short the interval.
        assert 0 < record["measure_interval"] <= time.time() - started


def test_rates_are_shared_between_processes_through_the_sample_store(settings, get_probe):
    assert get_probe("cpu") == []
    other = create_app({**settings, "agent_key": AGENT_KEY})  # another web worker
    try:
        answer = other.test_client().get(f"/monitoring/probe/cpu?key={AGENT_KEY}")
        assert len(answer.get_json()["cpu"]) == 1
    finally:
        other.extensions["sentinel.postgres"].close()


def busy_and_idle_ticks():
    with open("/proc/stat") as handle:
        return sum(int(value) for value in handle.readline().split()[1:9])


def test_cpu_times_add_up_to_the_interval_on_every_cpu(get_probe):
    get_probe("cpu")
    cpus = os.cpu_count()
    before = busy_and_idle_ticks()
    wait_for(
        lambda: busy_and_idle_ticks() - before >= 50 * cpus,
        what="half a second of ticks on every CPU",
    )
    (record,) = get_probe("cpu")
    spent = sum(value for key, value in record.items() if key.startswith("time_"))
    # Ticks are 10 ms wide: allow two per CPU for rounding and guest time.
    assert abs(spent - record["measure_interval"] * 1000 * cpus) <= 20 * cpus + 50


def test_wal_written_follows_the_writes(get_probe, pg_cluster):
    get_probe("wal_files")
    pg_cluster.execute("CREATE TABLE wal_filler AS SELECT g FROM generate_series(1, 20000) g")
    pg_cluster.execute("DROP TABLE wal_filler")
    (record,) = get_probe("wal_files")
    assert record["written_size"] > 20000 * 4


def test_temp_files_written_show_as_an_increase(get_probe, pg_cluster):
    get_probe("temp_files_size_delta")
    before = temp_bytes(pg_cluster)
    write_temp_files(pg_cluster)
    assert wait_for(lambda: temp_bytes(pg_cluster) > before, 10)
    records = {r["dbname"]: r for r in get_probe("temp_files_size_delta")}
    assert records["postgres"]["size"] >= 200000 * 4


def test_a_stats_reset_between_two_samples_never_gives_a_negative_increase(get_probe, pg_cluster):
    write_temp_files(pg_cluster)
    assert wait_for(lambda: temp_bytes(pg_cluster) > 0, 10)
    get_probe("temp_files_size_delta")
    pg_cluster.execute("SELECT pg_stat_reset()")
    assert wait_for(lambda: temp_bytes(pg_cluster) == 0, 10)
    records = {r["dbname"]: r for r in get_probe("temp_files_size_delta")}
    # Counted from zero since the reset: nothing written since.
    assert records["postgres"]["size"] == 0


def test_route_counters_are_the_cumulative_values(get_probe, pg_cluster):
    first = {r["dbname"]: r for r in get_probe("xacts")}["postgres"]["n_commit"]
    commit_transactions(pg_cluster, 20)
    assert wait_for(
        lambda: {r["dbname"]: r for r in get_probe("xacts")}["postgres"]["n_commit"] >= first + 20,
        10,
    )


# -- the collector -----------------------------------------------------------------------


def test_a_run_holds_every_probe_in_the_agents_collector_shape(collect, app):
    output = collect()
    assert list(output) == ["datetime", "hostinfo", "instances", "data", "version"]
    assert RUN_STAMP.fullmatch(output["datetime"])
    assert list(output["data"]) == list(probes.NAMES)
    (instance,) = output["instances"]
    assert instance["available"] is True
    assert instance["version_num"] >= 130000
    assert isinstance(instance["max_connections"], str)
    assert {db["dbname"] for db in instance["dbnames"]} >= {"postgres", "template1"}
    assert all(isinstance(db["size"], int) for db in instance["dbnames"])
    assert output["hostinfo"]["hostname"] == "sentinel.test"
    assert output["hostinfo"]["cpu_count"] == os.cpu_count()
    with app.app_context():
        assert MonitoringRun.select().count() == 1


def test_run_counters_are_increases_with_their_interval(collect, pg_cluster):
    first = collect()
    for name in ("xacts", "blocks", "bgwriter", "cpu", "process", "wal_files"):
        assert first["data"][name] == [], name  # nothing to compare with yet
    before = commits(pg_cluster)
    commit_transactions(pg_cluster, 30)
    assert wait_for(lambda: commits(pg_cluster) >= before + 30, 10)
    second = collect()
    xacts = {r["dbname"]: r for r in second["data"]["xacts"]}
    assert set(xacts) == datallowconn_databases(pg_cluster)
    assert 30 <= xacts["postgres"]["n_commit"] < 1000
    for name in ("xacts", "blocks", "bgwriter", "temp_files_size_delta", "cpu", "wal_files"):
        for record in second["data"][name]:
            assert set(record) == set(SHAPES[name]) | {"measure_interval"}, name
            assert record["measure_interval"] > 0


def test_a_stats_reset_between_two_runs_never_gives_a_negative_value(collect, pg_cluster):
    commit_transactions(pg_cluster, 50)
    pg_cluster.execute("CHECKPOINT")
    write_temp_files(pg_cluster)
    assert wait_for(lambda: temp_bytes(pg_cluster) > 0, 10)
    collect()
    pg_cluster.execute("SELECT pg_stat_reset()")
    pg_cluster.execute("SELECT pg_stat_reset_shared('bgwriter')")
    second = collect()
    for name in ("xacts", "blocks", "bgwriter", "temp_files_size_delta"):
        assert second["data"][name], name
        for record in second["data"][name]:
            for key, value in record.items():
                if isinstance(value, int | float):
                    assert value >= 0, (name, key, value)


def test_retention_drops_older_runs(collect, app):
    retention = app.config["SENTINEL"]["monitoring_retention"]
    with app.app_context():
        MonitoringRun.create(
            collected_at=state.utcnow() - datetime.timedelta(seconds=retention + 60),
            data=json.dumps({"datetime": "old"}),
        )
        kept = MonitoringRun.create(
            collected_at=state.utcnow() - datetime.timedelta(seconds=retention - 60),
            data=json.dumps({"datetime": "recent"}),
        )
    collect()
    with app.app_context():
        remaining = [json.loads(run.data)["datetime"] for run in MonitoringRun.select()]
        assert len(remaining) == 2
        assert "old" not in remaining
        assert MonitoringRun.get_by_id(kept.id)


def test_the_number_of_runs_kept_is_bounded(collect, app):
    # 600 s kept at one run per 60 s: 10 runs, plus 10 of slack.
    now = state.utcnow()
    with app.app_context():
        for age in range(30):
            MonitoringRun.create(
                collected_at=now - datetime.timedelta(seconds=age),
                data=json.dumps({"age": age}),
            )
    collect(monitoring_retention=600, monitoring_interval=60)
    with app.app_context():
        ages = sorted(json.loads(run.data).get("age", -1) for run in MonitoringRun.select())
    assert len(ages) == 20
    assert ages == [-1, *range(19)]  # the new run and the newest 19


def test_the_worker_collects_runs_that_history_returns(sentinel_env, client, headers, tmp_path):
    log = tmp_path / "worker.log"
    with open(log, "wb") as output:
        worker = subprocess.Popen(
            [sys.executable, "-m", "sentinel", "worker"],
            # Each run's line is DEBUG: at INFO, collecting says nothing.
            env={
                **sentinel_env,
                "SENTINEL_MONITORING_INTERVAL": "10",
                "SENTINEL_LOG_LEVEL": "DEBUG",
            },
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:

        def runs():
            answer = client.get("/monitoring/history?start=2000-01-01T00:00:00Z", headers=headers)
            assert answer.status_code == 200
            return answer.get_json()

        first = wait_for(runs, 30)
        assert first, log.read_text()[-3000:]
        assert list(first[0]["data"]) == list(probes.NAMES)
        two = wait_for(lambda: len(runs()) >= 2 and runs(), 30)
        assert two, log.read_text()[-3000:]
        later = two[1]["data"]
        assert later["cpu"] and later["cpu"][0]["measure_interval"] >= 5
        assert later["xacts"]
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(30)
    assert "event=monitoring_collected probes=18" in log.read_text()
    assert "event=probe_failed" not in log.read_text()


# -- history and config ----------------------------------------------------------------


def store_runs(app, *moments):
    """Runs collected at `moments`: a real run's data, each with its own datetime."""
    with app.app_context():
        run = monitoring.collect(postgres.pool, redis.samples, app.config["SENTINEL"])
        for moment in moments:
            MonitoringRun.create(
                collected_at=moment, data=json.dumps({**run, "datetime": moment.isoformat()})
            )


def history(client, headers, query=""):
    answer = client.get(f"/monitoring/history{query}", headers=headers)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert answer.mimetype == "application/json"
    return [run["datetime"] for run in answer.get_json()]


T0 = datetime.datetime(2030, 1, 2, 3, 4, 5)
T1, T2 = T0 + datetime.timedelta(minutes=1), T0 + datetime.timedelta(minutes=2)


def test_history_without_start_is_the_newest_run(app, client, headers):
    store_runs(app, T1, T0, T2)
    assert history(client, headers) == [T2.isoformat()]


def test_history_from_start_is_oldest_first(app, client, headers):
    store_runs(app, T2, T0, T1)
    assert history(client, headers, "?start=2030-01-02T03:05:05Z") == [
        T1.isoformat(),
        T2.isoformat(),
    ]


def test_history_limit_keeps_the_oldest_of_the_window(app, client, headers):
    store_runs(app, T0, T1, T2)
    query = "?start=2030-01-02T03:04:05Z&limit=2"
    assert history(client, headers, query) == [T0.isoformat(), T1.isoformat()]


def test_history_limit_zero_means_no_limit(app, client, headers):
    store_runs(app, T0, T1, T2)
    assert len(history(client, headers, "?start=2030-01-02T03:04:05Z&limit=0")) == 3


def test_history_accepts_a_limit_beyond_any_integer_type(app, client, headers):
    store_runs(app, T0, T1)
    query = "?start=2030-01-02T03:04:05Z&limit=99999999999999999999999"
    assert history(client, headers, query) == [T0.isoformat(), T1.isoformat()]


def test_history_is_empty_before_the_first_run(client, headers):
    assert history(client, headers) == []


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("?start=yesterday", "start"),
        ("?start=2030-01-02T03:04:05", "start"),
        ("?start=2030-01-02 03:04:05Z", "start"),
        ("?start=2030-13-45T99:99:99Z", "start"),
        ("?start=", "start"),
        ("?limit=ten", "limit"),
        ("?limit=-1", "limit"),
        ("?limit=1.5", "limit"),
        ("?limit=", "limit"),
        ("?start=2030-01-02T03:04:05Z&limit=x", "limit"),
    ],
)
def test_history_refuses_a_malformed_start_or_limit(app, client, headers, query, parameter):
    store_runs(app, T0)
    answer = client.get(f"/monitoring/history{query}", headers=headers)
    assert answer.status_code == 406
    assert answer.get_json() == {"error": f"Parameter '{parameter}' is malformed."}
    with app.app_context():
        assert MonitoringRun.select().count() == 1


def test_config_reports_the_collector_interval(client, headers, app):
    answer = client.get("/monitoring/config", headers=headers)
    assert answer.get_json() == {
        "dbnames": ["*"],
        "scheduler_interval": app.config["SENTINEL"]["monitoring_interval"],
    }


# -- bloat -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bloat_databases(pg_cluster):
    """Two databases with the same table: in one, 90% of its rows deleted."""
    names = {kind: f"bloat_{kind}_{uuid.uuid4().hex[:6]}" for kind in ("bloated", "clean")}
    for name in names.values():
        pg_cluster.execute(f'CREATE DATABASE "{name}"')
    fill_table(pg_cluster, names["bloated"], keep_one_in=10)
    fill_table(pg_cluster, names["clean"])
    yield names
    for name in names.values():
        pg_cluster.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.parametrize("name", ["heap_bloat", "btree_bloat"])
def test_a_bloated_table_raises_its_databases_bloat_ratio(get_probe, bloat_databases, name):
    ratios = {record["dbname"]: record["ratio"] for record in get_probe(name)}
    bloated, clean = ratios[bloat_databases["bloated"]], ratios[bloat_databases["clean"]]
    assert bloated > 40
    assert clean < 10
    assert bloated > 5 * clean


@pytest.mark.parametrize("name", ["heap_bloat", "btree_bloat"])
def test_bloat_probes_hold_no_more_connections_than_the_pool(
    app, get_probe, pg_cluster, bloat_databases, name
):
    get_probe(name)
    get_probe(name)
    held = pg_cluster.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'sentinel'"
    )[0][0]
    assert 1 <= held <= app.config["SENTINEL"]["pg_pool_size"]


# -- PostgreSQL stopped, or a standby ----------------------------------------------------


@pytest.fixture
def app_on(settings):
    """app_on(dsn) -> a client (agent key) of an app watching another cluster."""
    made = []

    def make(dsn):
        app = create_app({**settings, "pg_dsn": dsn, "agent_key": AGENT_KEY})
        made.append(app)
        return app

    yield make
    for app in made:
        app.extensions["sentinel.postgres"].close()
    state.database.close_all()


def key_get(app, path):
    return app.test_client().get(f"{path}?key={AGENT_KEY}")


@pytest.mark.parametrize("name", ["sessions", "db_size", "wal_files", "heap_bloat"])
def test_sql_probes_answer_503_while_postgres_is_stopped(app_on, own_cluster, name):
    app = app_on(own_cluster.dsn())
    own_cluster.stop()
    answer = key_get(app, f"/monitoring/probe/{name}")
    assert answer.status_code == 503
    assert answer.get_json()["error"].startswith("PostgreSQL is unavailable: ")


@pytest.mark.parametrize("name", ["memory", "loadavg", "filesystems_size", "cpu", "process"])
def test_host_probes_still_answer_while_postgres_is_stopped(app_on, own_cluster, name):
    app = app_on(own_cluster.dsn())
    own_cluster.stop()
    answer = key_get(app, f"/monitoring/probe/{name}")
    assert answer.status_code == 200
    assert list(answer.get_json()) == [name]


def test_a_run_while_postgres_is_stopped_keeps_the_host_probes(app_on, own_cluster):
    app = app_on(own_cluster.dsn())
    own_cluster.stop()
    with app.app_context():
        output = monitoring.collect_and_store(postgres.pool, redis.samples, app.config["SENTINEL"])
        assert MonitoringRun.select().count() == 1
    assert set(output["data"]) == probes.HOST_PROBES
    assert output["data"]["memory"] and output["data"]["loadavg"]
    (instance,) = output["instances"]
    assert instance["available"] is False
    assert instance["port"] == own_cluster.port


@pytest.fixture
def standby(own_cluster):
    """A streaming standby of own_cluster, made with pg_basebackup."""
    base = Path(tempfile.mkdtemp(prefix="sentinel-standby-", dir="/tmp"))
    os.chmod(base, 0o755)
    cluster = sandbox.Cluster(base / "cluster", throwaway=True)
    cluster.base.mkdir()
    shutil.copy(own_cluster.base / "password", cluster.base / "password")
    if os.geteuid() == 0:
        entry = pwd.getpwnam(cluster.osuser)
        for path in (cluster.base, cluster.base / "password"):
            os.chown(path, entry.pw_uid, entry.pw_gid)
    cluster.base.chmod(0o700)
    cluster.run(
        "pg_basebackup",
        "-D",
        str(cluster.data),
        "-R",
        "-X",
        "stream",
        "-h",
        str(own_cluster.sock),
        "-p",
        str(own_cluster.port),
        "-U",
        "postgres",
    )
    (cluster.data / "sandbox_port.conf").unlink()  # the primary's port: choose another
    cluster.start()
    yield cluster
    cluster.stop("immediate")
    shutil.rmtree(base, ignore_errors=True)


def test_a_streaming_standby_reports_its_upstream_and_its_lag(app_on, standby, own_cluster):
    app = app_on(standby.dsn())

    def probe(name):
        answer = key_get(app, f"/monitoring/probe/{name}")
        assert answer.status_code == 200
        return answer.get_json()[name]

    def streaming():
        # The WAL receiver starts a moment after the server: not connected yet.
        rows = probe("replication_connection")
        return rows if rows and rows[0]["connected"] == 1 else None

    connection = wait_for(streaming, 20, what="the standby to stream")
    assert connection == [
        {
            "upstream": connection[0]["upstream"],
            "connected": 1,
            "datetime": connection[0]["datetime"],
        }
    ]
    assert connection[0]["upstream"]
    own_cluster.execute("CREATE TABLE on_primary AS SELECT g FROM generate_series(1, 1000) g")
    (lag,) = wait_for(lambda: probe("replication_lag"), 20)
    assert set(lag) == {"lag", "datetime"}
    assert isinstance(lag["lag"], int) and lag["lag"] >= 0
    assert probe("wal_files") == []  # a standby has no WAL position of its own
