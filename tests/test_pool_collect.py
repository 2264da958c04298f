"""Agentless collection on real worker processes: two `sentinel worker`s with
a Redis of their own and PostgreSQL state, collecting sources on the test
cluster every 2 s (custom metrics), dispatched every second."""

import os
import subprocess
import sys
import time
import uuid

import psycopg2
import psycopg2.extras
import pytest
from polling import wait_for

from sentinel import create_app, jobs, state
from sentinel.dev import sandbox
from sentinel.extensions import connect_redis
from sentinel.pool import collect, connections, history, store
from sentinel.pool.models import DiscoveredDatabase, LatestSample, ReplicationSlot, Sample, Source
from sentinel.worker import CRON_LOCK

EVERY = 2  # s: the interval of the tests' metrics


@pytest.fixture(scope="module")
def pool(tmp_path_factory, pg_cluster):
    """Two workers (one of them the dispatcher) and an app in this process on
    the same state and Redis, to make sources and read what was collected."""
    base = tmp_path_factory.mktemp("pool-collect")
    redis_server = sandbox.RedisServer().start()
    state_db = f"collect_state_{uuid.uuid4().hex[:8]}"
    pg_cluster.execute(f'CREATE DATABASE "{state_db}"')
    settings = {
        "pg_dsn": pg_cluster.dsn(),
        "redis_url": redis_server.url,
        "database": pg_cluster.url(state_db),
        "state_dir": str(base / "state"),
        "hostname": "sentinel.test",
    }
    app = create_app(settings)
    env = {
        **os.environ,
        "SENTINEL_PG_DSN": settings["pg_dsn"],
        "SENTINEL_REDIS_URL": settings["redis_url"],
        "SENTINEL_DATABASE": settings["database"],
        "SENTINEL_STATE_DIR": settings["state_dir"],
        "SENTINEL_POOL_DISPATCH_INTERVAL": "1",
        "SENTINEL_POOL_DISCOVERY_INTERVAL": "2",
    }
    workers = []
    for number in (1, 2):
        log = open(base / f"worker{number}.log", "wb")  # noqa: SIM115 - closed below
        process = subprocess.Popen(
            [sys.executable, "-m", "sentinel", "worker"], env=env, stdout=log, stderr=log
        )
        workers.append((process, log))
    app.cluster = pg_cluster
    app.logs = [base / "worker1.log", base / "worker2.log"]
    redis = connect_redis(redis_server.url)
    wait_for(
        lambda: len(redis.keys(connections.ALIVE + "*")) == 2 and redis.exists(CRON_LOCK),
        timeout=60,
        what="both workers up, one of them leading the cron",
    )
    with app.app_context():
        yield app
    for process, _ in workers:
        process.terminate()
    for process, log in workers:
        process.wait(30)
        log.close()
    app.extensions["sentinel.postgres"].close()
    app.extensions["sentinel.redis"].close()
    state.database.close_all()
    redis_server.stop()
    pg_cluster.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (state_db,)
    )
    pg_cluster.execute(f'DROP DATABASE IF EXISTS "{state_db}"')


@pytest.fixture
def make_source(pool):
    """make_source(name, **fields) on the test cluster, collecting kpi and
    db_stats every 2 s unless told; disabled and deleted after the test."""
    made = []

    def make(name, **fields):
        given = {
            "name": name,
            "host": "127.0.0.1",
            "port": pool.cluster.port,
            "user": "postgres",
            "password": pool.cluster.password,
            "dbname": "postgres",
            "metrics": {"kpi": EVERY, "db_stats": EVERY},
            **fields,
        }
        source = store.create(given)
        made.append(source["id"])
        return source

    yield make
    for source_id in made:
        store.delete(source_id)


@pytest.fixture
def database(pool):
    """database(name): a new database on the test cluster, dropped after the test."""
    made = []

    def create(name):
        pool.cluster.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
        made.append(name)
        return name

    yield create
    for name in made:
        pool.cluster.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def source_row(source_id):
    # A new transaction each time: what the workers committed since.
    return Source.get_by_id(source_id)


def slots_of(source_id, dbname, metric="kpi"):
    return [
        slot
        for (slot,) in Sample.select(Sample.slot)
        .where(Sample.source == source_id, Sample.dbname == dbname, Sample.metric == metric)
        .tuples()
    ]


def latest_rows(source_id, dbname, metric):
    found = (
        LatestSample.select()
        .where(
            LatestSample.source == source_id,
            LatestSample.dbname == dbname,
            LatestSample.metric == metric,
        )
        .first()
    )
    return None if found is None else history.series(source_id, dbname, metric, 0, 2**40)[-1][2]


def keeps_its_schedule(source_id, dbname, slots=3):
    """Wait for `slots` consecutive new slots of the source's kpi, from now."""
    start = time.time() // EVERY * EVERY + EVERY
    wanted = [start + EVERY * number for number in range(slots)]
    wait_for(
        lambda: set(wanted) <= set(slots_of(source_id, dbname)),
        timeout=EVERY * slots + 10,
        what=f"samples at slots {wanted}",
    )


def test_a_source_on_the_cluster_is_collected_and_connected(database, make_source):
    dbname = database("collect_plain")
    source = make_source("plain", dbname=dbname)

    rows = wait_for(lambda: latest_rows(source["id"], dbname, "db_stats"), what="db_stats")

    assert dbname in {row["datname"] for row in rows}
    [kpi] = wait_for(lambda: latest_rows(source["id"], dbname, "kpi"), what="kpi")
    assert kpi["backends"] >= 1
    row = source_row(source["id"])
    assert row.connected is True
    assert row.last_error is None
    assert row.last_collected_at is not None


def test_a_source_on_a_closed_port_is_unreachable_while_another_keeps_its_schedule(
    database, make_source
):
    good = make_source("good", dbname=database("collect_good"))
    bad = make_source("closed", port=sandbox.free_port())

    wait_for(lambda: source_row(bad["id"]).connected is False, what="the closed source's status")

    assert "Connection refused" in source_row(bad["id"]).last_error
    keeps_its_schedule(good["id"], "collect_good")


def test_a_slow_source_gets_its_error_while_another_keeps_its_schedule(pool, database, make_source):
    slow_db = database("collect_slow")
    pool.cluster.execute("CREATE SEQUENCE sales_numbers", dbname=slow_db)
    # The catalog's sequence_health reads every sequence: with one locked (a
    # drop not committed), it waits until its statement_timeout (5 s) cancels it.
    holder = pool.cluster.connect(slow_db)
    holder.autocommit = False
    try:
        with holder.cursor() as cursor:
            cursor.execute("DROP SEQUENCE sales_numbers")
        good = make_source("steady", dbname=database("collect_steady"))
        slow = make_source("slow", dbname=slow_db, metrics={"kpi": EVERY, "sequence_health": EVERY})
        since = time.time()

        wait_for(
            lambda: (
                "metric sequence_health: canceling statement due to statement timeout"
                in (source_row(slow["id"]).last_error or "")
            ),
            timeout=20,
            what="the slow metric's error",
        )

        # Every slot of the other source while the slow one held a worker,
        # from the second on (the first may have been sent to that worker
        # before it was seen stuck, and waited longer than the 2 s interval).
        first = int(since) // EVERY * EVERY + 2 * EVERY
        last = int(time.time()) // EVERY * EVERY - EVERY
        wanted = set(range(first, last + 1, EVERY))
        assert len(wanted) >= 3
        wait_for(
            lambda: wanted <= set(slots_of(good["id"], "collect_steady")),
            timeout=EVERY + 3,
            what=f"the other source's samples at {sorted(wanted)}",
        )
        assert slots_of(slow["id"], slow_db)  # its other metric still collected
    finally:
        holder.close()


def test_continuous_discovery_follows_databases_created_and_dropped(pool, database, make_source):
    database("disc_first")
    database("disc_first_old")
    source = make_source(
        "fleet",
        kind="postgres-continuous-discovery",
        include_pattern="^disc_",
        exclude_pattern="_old$",
        # kpi is instance-level: collected on one database of the instance only.
        metrics={"kpi": EVERY, "table_stats": EVERY},
    )

    def found():
        query = DiscoveredDatabase.select(DiscoveredDatabase.dbname).where(
            DiscoveredDatabase.source == source["id"]
        )
        return sorted(row.dbname for row in query)

    wait_for(lambda: found() == ["disc_first"], what="the first database found")
    wait_for(
        lambda: slots_of(source["id"], "disc_first", "table_stats"),
        what="the found database collected",
    )
    database("disc_second")
    wait_for(lambda: found() == ["disc_first", "disc_second"], what="the new database found")
    wait_for(
        lambda: slots_of(source["id"], "disc_second", "table_stats"),
        what="the new database collected",
    )

    pool.cluster.execute('DROP DATABASE "disc_first" WITH (FORCE)')

    wait_for(lambda: found() == ["disc_second"], what="the dropped database forgotten")
    assert slots_of(source["id"], "disc_first", "table_stats") == []


def test_slot_health_follows_a_logical_slot_retaining_wal(pool, make_source):
    pool.cluster.execute("SELECT pg_create_logical_replication_slot('sales_slot', 'test_decoding')")
    try:
        source = make_source(
            "replicated",
            metrics={"kpi": EVERY},
            replication_slots=[
                {"publication_name": "sales", "slot_name": "sales_slot"},
                {"publication_name": "gone", "slot_name": "gone_slot"},
            ],
        )

        def health(name):
            return ReplicationSlot.get(
                ReplicationSlot.source == source["id"], ReplicationSlot.slot_name == name
            )

        first = wait_for(lambda: health("sales_slot").checked_at and health("sales_slot"))
        assert first.active is False
        assert first.xmin_age is not None
        gone = health("gone_slot")
        assert (gone.active, gone.retained_wal_bytes, gone.xmin_age) == (False, None, None)
        pool.cluster.execute("CREATE TABLE slot_traffic AS SELECT generate_series(1, 50000) AS n")
        try:
            wait_for(
                lambda: health("sales_slot").retained_wal_bytes > first.retained_wal_bytes + 10**6,
                what="the retained WAL growing",
            )
        finally:
            pool.cluster.execute("DROP TABLE slot_traffic")
    finally:
        pool.cluster.execute("SELECT pg_drop_replication_slot('sales_slot')")


def test_retention_deletes_samples_older_than_it(pool, make_source):
    source = make_source("kept", enabled=False)
    now = int(time.time())
    old = now - 8 * 86400
    history.record(source["id"], "postgres", old, old + 0.5, {"kpi": [{"backends": 1}]})
    history.record(source["id"], "postgres", now, now + 0.5, {"kpi": [{"backends": 2}]})

    jobs.enqueue(connect_redis(pool.config["SENTINEL"]["redis_url"]), collect.purge)

    wait_for(lambda: slots_of(source["id"], "postgres") == [now], what="the old run purged")


def test_a_source_has_at_most_two_connections_and_keeps_reusing_one(pool, database, make_source):
    dbname = database("collect_reused")
    source = make_source("reused", dbname=dbname)
    wait_for(lambda: len(slots_of(source["id"], dbname)) >= 2, what="two runs")

    seen = []
    deadline = time.monotonic() + 3 * EVERY
    while time.monotonic() < deadline:
        pids = [
            pid
            for (pid,) in pool.cluster.execute(
                "SELECT pid FROM pg_stat_activity"
                " WHERE application_name = 'sentinel-pool' AND datname = %s",
                (dbname,),
            )
        ]
        assert len(pids) <= 2, pids
        seen.append(set(pids))
        time.sleep(0.1)

    assert len(slots_of(source["id"], dbname)) >= 4
    assert set.intersection(*seen), f"no connection kept across runs: {seen}"


def test_a_metric_whose_extension_is_missing_is_skipped_quietly(database, make_source):
    dbname = database("collect_bare")  # no pg_stat_statements here
    source = make_source("bare", dbname=dbname, metrics={"kpi": EVERY, "stat_statements": EVERY})

    wait_for(lambda: len(slots_of(source["id"], dbname)) >= 2, what="two runs")

    assert slots_of(source["id"], dbname, "stat_statements") == []
    row = source_row(source["id"])
    assert (row.connected, row.last_error) == (True, None)


def test_replication_lists_a_standby_streaming_beside_the_backends_it_counts(pool, make_source):
    # kpi and replication in one run: both read the run's one pg_stat_activity.
    pool.cluster.execute(
        "SELECT pg_create_logical_replication_slot('standby_slot', 'test_decoding')"
    )
    stream = psycopg2.connect(
        pool.cluster.dsn(),
        application_name="standby-one",
        connection_factory=psycopg2.extras.LogicalReplicationConnection,
    )
    try:
        stream.cursor().start_replication(slot_name="standby_slot", decode=True)
        source = make_source("streamed", metrics={"kpi": EVERY, "replication": EVERY})

        rows = wait_for(
            lambda: latest_rows(source["id"], "postgres", "replication"), what="replication"
        )

        [standby] = [row for row in rows if row["application_name"] == "standby-one"]
        assert standby["state"] == "streaming"
        assert standby["client_addr"] == "127.0.0.1"
        [kpi] = latest_rows(source["id"], "postgres", "kpi")
        assert kpi["backends"] >= 1
    finally:
        stream.close()
        wait_for(
            lambda: (
                not pool.cluster.execute(
                    "SELECT 1 FROM pg_replication_slots WHERE slot_name = 'standby_slot' AND active"
                )
            ),
            what="the slot let go",
        )
        pool.cluster.execute("SELECT pg_drop_replication_slot('standby_slot')")
