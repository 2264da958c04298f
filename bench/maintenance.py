"""Maintenance: the four insight routes on a database of 10,000 tables (one
index each), beside the same catalog reads over one open connection and
beside the reference agent; and how late a scheduled job starts in the worker."""

import datetime
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import psycopg2

from bench.common import ROOT, KeepAliveClient, fmt, speed, timed, verdict
from sentinel.plugins.maintenance import insight
from sentinel.postgres import Connection, RawConnection

DBNAME = "bench10k"
TABLES = 10_000
SCHEMA_LIMIT_MS = 1000.0
START_LIMIT_S = 2.0


def create_tables(connect):
    """DBNAME with TABLES tables of one row and one index each, analysed."""
    admin = connect("postgres")
    admin.cursor().execute(f"DROP DATABASE IF EXISTS {DBNAME}")
    admin.cursor().execute(f"CREATE DATABASE {DBNAME}")
    admin.close()
    conn = connect(DBNAME)
    started = time.perf_counter()
    with conn.cursor() as cur:
        for first in range(0, TABLES, 500):
            cur.execute(
                "DO $$ BEGIN FOR i IN %s..%s LOOP EXECUTE format("
                "'CREATE TABLE t%%s (id int PRIMARY KEY, v text);"
                " INSERT INTO t%%s VALUES (1, ''x'')', i, i); END LOOP; END $$",
                (first, first + 499),
            )
        cur.execute("ANALYZE")
    conn.close()
    return time.perf_counter() - started


def paths():
    return {
        "instance": "/maintenance",
        "database": f"/maintenance/{DBNAME}",
        "schema": f"/maintenance/{DBNAME}/schema/public",
        "table": f"/maintenance/{DBNAME}/schema/public/table/t5000",
    }


def raw_reads(conn):
    """The catalog reads of each route, with the bloat arithmetic, and no HTTP."""
    raw = Connection(conn)

    def instance():
        for row in raw.query_file(insight.SQL / "databases.sql"):
            if row["datname"] == DBNAME:
                insight._relations(raw)

    def schema():
        oid = raw.queryscalar("SELECT oid FROM pg_namespace WHERE nspname = 'public'")
        insight._relations(raw, oid, "public")

    def table():
        oid = raw.queryscalar("SELECT oid FROM pg_namespace WHERE nspname = 'public'")
        insight._relations(raw, oid, "public", "t5000")

    return {
        "instance": instance,
        "database": lambda: insight._relations(raw),
        "schema": schema,
        "table": table,
    }


def scheduling_delays(environment, service, client, headers, count=5):
    """Seconds from each job's datetime to its start in a real worker."""
    worker = subprocess.Popen(
        [sys.executable, "-m", "sentinel", "worker"],
        env=service.env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        time.sleep(3)  # the worker and its scheduler up
        ids = []
        for number in range(count):
            at = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=2 + number)
            body = {"datetime": at.strftime("%Y-%m-%dT%H:%M:%SZ")}
            path = f"/maintenance/{DBNAME}/schema/public/table/t{number}/analyze"
            ids.append(client.request("POST", path, body, headers)["id"])
        state = Path(service.env["SENTINEL_STATE_DIR"]) / "sentinel.db"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with sqlite3.connect(state) as db:
                rows = db.execute(
                    "SELECT scheduled_at, started_at FROM maintenance_jobs"
                    f" WHERE id IN ({','.join('?' * len(ids))}) AND started_at IS NOT NULL",
                    ids,
                ).fetchall()
            if len(rows) == len(ids):
                break
            time.sleep(0.2)
        parse = datetime.datetime.fromisoformat
        return [(parse(started) - parse(scheduled)).total_seconds() for scheduled, started in rows]
    finally:
        worker.terminate()
        worker.wait(30)


def run(environment, agent, n=20):
    print("# Maintenance: sizes and bloat of 10,000 tables, and scheduled jobs")
    cluster = environment.cluster

    def connect(dbname):
        conn = cluster.connect(dbname)
        conn.autocommit = True
        return conn

    seconds = create_tables(connect)
    print(f"  {TABLES} tables created and analysed in {seconds:.1f} s")
    service = environment.service()
    environment.create_user(service, "bench", "bench-password")
    client = KeepAliveClient(service.port)
    session = client.request("POST", "/login", {"username": "bench", "password": "bench-password"})
    headers = {"X-Session": session["session"]}
    raw_conn = psycopg2.connect(
        cluster.dsn(DBNAME), connection_factory=RawConnection, options="-c statement_timeout=30000"
    )
    raw_conn.autocommit = True
    reads = raw_reads(raw_conn)
    figures, verdicts = {}, {}
    print("\n## Sentinel (gunicorn, keep-alive) beside the same reads over one connection")
    for name, path in paths().items():
        raw = timed(reads[name], n, warmup=2)
        # A connection of its own per route: the raw reads leave one idle for
        # longer than gunicorn keeps an idle connection open.
        route_client = KeepAliveClient(service.port)
        call = lambda path=path, http=route_client: http.get_bytes(path, headers)  # noqa: E731
        ours = timed(call, n, warmup=2)
        route_client.close()
        figures[name] = {"sentinel": ours, "raw": raw}
        print(f"  GET {path:44} {fmt(ours)}")
        print(f"      {'same reads, one connection':44} {fmt(raw)}")
    verdicts["schema_under_1s"] = figures["schema"]["sentinel"]["median"] < SCHEMA_LIMIT_MS
    print(
        f"\n  schema page, target under {SCHEMA_LIMIT_MS:.0f} ms:"
        f" {verdict(verdicts['schema_under_1s'])}"
    )
    raw_conn.close()

    if agent.available:

        def connect_agent(dbname):
            return agent.connect_postgres(dbname)

        create_tables(connect_agent)
        theirs = agent.time_routes(list(paths().values()), n)
        for name, path in paths().items():
            figures[name]["agent"] = theirs[path]
            ours = figures[name]["sentinel"]["median"]
            print(f"  {name:10} Sentinel {speed(ours, theirs[path]['median'])}")
    else:
        print("\n## Reference agent: not available")

    client = KeepAliveClient(service.port)
    delays = scheduling_delays(environment, service, client, headers)
    figures["schedule_delay_s"] = delays
    worst = max(delays) if delays else float("inf")
    verdicts["start_under_2s"] = worst < START_LIMIT_S
    print("\n## From a job's datetime to its start in the worker")
    print(f"  {', '.join(f'{delay:.2f}' for delay in delays)} s (worst {worst:.2f} s)")
    print(f"  target under {START_LIMIT_S:.0f} s: {verdict(verdicts['start_under_2s'])}")
    figures["verdicts"] = verdicts
    return figures
