"""GET /metrics with 1,000 sources, each with the latest samples of the
`standard` preset as a small application's primary would answer them,
scraped through gunicorn beside the raw SQL reading the same rows (every
source and every latest sample) through one open sqlite3 connection to the
state database (the default SQLite state).

The rows are written through history.record, as collection writes them, for
a shape stated in SHAPE: three databases, a dozen tables, twenty statements
and so on, and the CPU record() spends writing their lines for /metrics
(exposition.sample_lines) is timed apart: collection pays it once a run.
Before the route, the parts of a scrape are timed in process: the state's
reads, and the text built from them.
"""

import datetime
import functools
import http.client
import sqlite3
import time
from pathlib import Path

import orjson

from sentinel import create_app, state
from sentinel.auth import accounts, sessions
from sentinel.pool import catalog, exposition, history, prometheus, store
from sentinel.pool.models import Source

from .common import fmt, interleaved, verdict
from .pool import cpu_per_call

SOURCES = 1000
TARGET_MS = 1000
AIM_MS = 300
# What each source's server holds, for the rows of its latest samples.
SHAPE = {
    "databases": 3,
    "tables": 12,
    "indexes": 16,
    "statements": 20,
    "sequences": 4,
    "backend_states": ("active", "idle", "idle in transaction"),
    "lock_modes": ("AccessShareLock", "ExclusiveLock", "RowExclusiveLock", "RowShareLock"),
    "settings": 20,
    "slot_every": 5,  # one source in five has a logical slot
    "standby_every": 10,  # one in ten streams to a standby
}


def _database_rows(number, dbnames):
    db_stats = []
    for index, datname in enumerate(dbnames):
        base = number * 1000 + index * 100
        row = {"datname": datname, "numbackends": index + 2}
        for offset, column in enumerate(
            (
                "xact_commit",
                "xact_rollback",
                "blks_read",
                "blks_hit",
                "tup_returned",
                "tup_fetched",
                "tup_inserted",
                "tup_updated",
                "tup_deleted",
                "conflicts",
                "temp_files",
                "temp_bytes",
                "deadlocks",
                "checksum_failures",
                "sessions",
                "sessions_abandoned",
                "sessions_fatal",
                "sessions_killed",
            )
        ):
            row[column] = base * (offset + 1)
        for column in ("blk_read_time", "blk_write_time", "session_time", "active_time"):
            row[column] = base * 1.25
        row["idle_in_transaction_time"] = 0.0
        db_stats.append(row)
    everything = [*dbnames, "template0", "template1"]
    return {
        "db_stats": db_stats,
        "db_size": [
            {"datname": d, "size_bytes": 8_000_000 * (i + 1)} for i, d in enumerate(dbnames)
        ],
        "wraparound": [
            {"datname": d, "xid_age": 1000 + i, "mxid_age": i, "freeze_max_age_ratio": 0.0001}
            for i, d in enumerate(everything)
        ],
    }


def _object_rows(number):
    tables = [f"table_{t:02d}" for t in range(SHAPE["tables"])]
    table_stats, table_io = [], []
    for t, relname in enumerate(tables):
        count = number + t * 37
        table_stats.append(
            {
                "schemaname": "public",
                "relname": relname,
                "size_bytes": 8192 * (count + 1),
                "seq_scan": count,
                "seq_tup_read": count * 50,
                "idx_scan": count * 9,
                "n_tup_ins": count * 3,
                "n_tup_upd": count * 2,
                "n_tup_del": count,
                "n_tup_hot_upd": count,
                "n_live_tup": count * 40,
                "n_dead_tup": count % 17,
                "seconds_since_vacuum": 3600.5 + t,
                "seconds_since_analyze": 1800.25 + t,
                "vacuum_count": 1,
                "autovacuum_count": t,
                "analyze_count": 1,
                "autoanalyze_count": t,
            }
        )
        table_io.append(
            {
                "schemaname": "public",
                "relname": relname,
                "heap_blks_read": count * 4,
                "heap_blks_hit": count * 400,
                "idx_blks_read": count,
                "idx_blks_hit": count * 90,
                "toast_blks_read": 0,
                "toast_blks_hit": 0,
            }
        )
    index_stats = [
        {
            "schemaname": "public",
            "relname": tables[i % len(tables)],
            "indexrelname": f"{tables[i % len(tables)]}_idx_{i:02d}",
            "size_bytes": 8192 * (number + i + 1),
            "idx_scan": number * i,
            "idx_tup_read": number * i * 3,
            "idx_tup_fetch": number * i * 2,
        }
        for i in range(SHAPE["indexes"])
    ]
    statements = [
        {
            "queryid": (number * 7919 + s) * 104_729 - 2**40,
            "userid": 16384,
            "calls": number + s,
            "total_time_ms": (number + s) * 0.75,
            "mean_time_ms": 0.75,
            "rows": (number + s) * 3,
            "shared_blks_hit": (number + s) * 12,
            "shared_blks_read": s,
            "temp_blks_written": 0,
            "query": f"SELECT * FROM {tables[s % len(tables)]} WHERE id = $1 AND tenant = $2",
        }
        for s in range(SHAPE["statements"])
    ]
    sequences = [
        {"schemaname": "public", "sequencename": f"{name}_id_seq", "used_ratio": 0.000123}
        for name in tables[: SHAPE["sequences"]]
    ]
    return {
        "table_stats": table_stats,
        "table_io": table_io,
        "index_stats": index_stats,
        "stat_statements": statements,
        "sequence_health": sequences,
    }


def _instance_rows(number):
    kpi = {
        "backends": 6,
        "active_backends": 1,
        "waiting_backends": 0,
        "oldest_xact_seconds": 0.002,
        **{
            column: number * (i + 3)
            for i, column in enumerate(
                (
                    "xact_commit",
                    "xact_rollback",
                    "blks_read",
                    "blks_hit",
                    "tup_returned",
                    "tup_fetched",
                    "tup_inserted",
                    "tup_updated",
                    "tup_deleted",
                    "temp_bytes",
                    "deadlocks",
                )
            )
        },
        "in_recovery": 0,
        "uptime_seconds": 864_000 + number,
    }
    slots = []
    if number % SHAPE["slot_every"] == 0:
        slots.append(
            {
                "slot_name": f"orders_{number:04d}",
                "slot_type": "logical",
                "database": "app",
                "active": 1,
                "retained_wal_bytes": 65536 + number,
                "xmin_age": None,
                "catalog_xmin_age": 3,
                "wal_status": "reserved",
                "safe_wal_size": None,
            }
        )
    replication = []
    if number % SHAPE["standby_every"] == 0:
        replication.append(
            {
                "application_name": "walreceiver",
                "client_addr": "10.0.0.2",
                "state": "streaming",
                "sync_state": "async",
                "sent_lag_bytes": 0,
                "replay_lag_bytes": 128,
                "write_lag_seconds": 0.0004,
                "flush_lag_seconds": 0.0009,
                "replay_lag_seconds": 0.0011,
            }
        )
    return {
        "instance_up": [{"is_up": 1}],
        "kpi": [kpi],
        "backends": [
            {
                "state": s,
                "backends": 2,
                "waiting": 0,
                "oldest_xact_seconds": 0.5,
                "longest_query_seconds": 0.0,
            }
            for s in SHAPE["backend_states"]
        ],
        "locks": [{"mode": m, "granted": 4, "waiting": 0} for m in SHAPE["lock_modes"]],
        "wal": [
            {
                "wal_lsn_bytes": 9_000_000_000 + number,
                "wal_records": number * 100,
                "wal_fpi": number,
                "wal_bytes": number * 8000,
                "wal_buffers_full": 0,
            }
        ],
        "checkpoints": [
            {
                "checkpoints_timed": 100,
                "checkpoints_req": 2,
                "checkpoint_write_time": 12345.0,
                "checkpoint_sync_time": 23.0,
                "buffers_checkpoint": 4000,
                "buffers_clean": 0,
                "maxwritten_clean": 0,
                "buffers_alloc": 9000,
                "buffers_backend": 300,
                "buffers_backend_fsync": 0,
            }
        ],
        "replication": replication,
        "replication_slots": slots,
        "recovery": [{"in_recovery": 0, "replay_lag_bytes": None, "replay_lag_seconds": None}],
        "archiver": [
            {
                "archived_count": 0,
                "failed_count": 0,
                "seconds_since_archived": None,
                "seconds_since_failed": None,
            }
        ],
        "connections": [
            {
                "connections": 6,
                "max_connections": 100,
                "reserved_connections": 3,
                "used_ratio": 0.06,
            }
        ],
        "blocking_locks": [{"blocked": 0, "blocking": 0, "longest_wait_seconds": 0.0}],
        "long_transactions": [],
        "prepared_transactions": [{"prepared": 0, "oldest_seconds": 0.0}],
        "autovacuum": [{"workers": 0, "max_workers": 3, "longest_seconds": 0.0}],
        "vacuum_progress": [],
        "subscriptions": [],
        "settings": [
            {"name": f"setting_{i:02d}", "setting": str(i * 64), "unit": "kB", "pending_restart": 0}
            for i in range(SHAPE["settings"])
        ],
    }


def latest_rows(number, dbname):
    """{metric: rows} a source's last run of every standard metric answered."""
    rows = {
        **_instance_rows(number),
        **_database_rows(number, ["postgres", dbname, "reporting"][: SHAPE["databases"]]),
        **_object_rows(number),
    }
    standard = catalog.preset("standard")
    return {metric: found for metric, found in rows.items() if metric in standard}


def lines_cpu(runs):
    """CPU seconds (process time) of writing the lines of every run, as
    record() does once a run."""
    start = time.process_time()
    for results in runs:
        for metric, rows in results.items():
            exposition.sample_lines(metric, rows)
    return time.process_time() - start


def _whole_exposition():
    """A scrape's text built in process, every chunk written (and let go)."""
    for _chunk in prometheus.exposition():
        pass


def prepare(service, cluster_port):
    """The sources, their latest samples and a viewer's API token in the
    service's state, made in this process; and a scrape's parts timed."""
    settings = {
        "state_dir": service.env["SENTINEL_STATE_DIR"],
        "pg_dsn": service.env["SENTINEL_PG_DSN"],
        "redis_url": service.env["SENTINEL_REDIS_URL"],
        "log_level": "WARNING",
    }
    app = create_app(settings)
    try:
        with app.app_context():
            slot = int(time.time()) // 60 * 60
            runs, parts = [], {}
            for number in range(SOURCES):
                dbname = f"app_{number % 20}"
                source = store.create(
                    {
                        "name": f"source-{number:04d}",
                        "host": "127.0.0.1",
                        "port": cluster_port,
                        "dbname": dbname,
                        "user": "monitor",
                        "password": f"monitor-password-{number:04d}",
                        "tags": {"env": ("prod", "staging", "dev")[number % 3], "team": "db"},
                        "preset": "standard",
                    }
                )
                runs.append(latest_rows(number, dbname))
                history.record(source["id"], dbname, slot, time.time(), runs[-1])
            parts["lines_written"] = sorted(lines_cpu(runs) for _ in range(3))[1]
            now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
            Source.update(connected=True, last_collected_at=now).execute()
            accounts.create_user("bench", "bench-password", "viewer")
            token = sessions.create_token(accounts.get_user("bench"), "bench")
            text = "".join(prometheus.exposition())
            parts |= interleaved(
                {
                    "sources": prometheus.sources,
                    "latest": functools.partial(history.latest, lines=True),
                    "exposition": _whole_exposition,
                },
                5,
                warmup=1,
                run=1,
            )
    finally:
        app.extensions["sentinel.postgres"].close()
        app.extensions["sentinel.redis"].close()
        state.database.close_all()
    lines = text.count("\n")
    families = text.count("# TYPE ")
    size = {"bytes": len(text.encode()), "samples": lines - 2 * families, "families": families}
    return token, parts, size


class Scraper:
    """Prometheus' side: one keep-alive connection, the whole answer read.
    (The suites' socket clients copy their buffer at every chunk received:
    fine for kilobytes, quadratic for the tens of megabytes of a scrape.)"""

    def __init__(self, port, token):
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        self.headers = {"Authorization": f"Bearer {token}", "Accept-Encoding": "identity"}

    def scrape(self):
        try:
            return self._get()
        except (http.client.RemoteDisconnected, ConnectionError):
            # gunicorn closed the connection idle past its keep-alive (5 s).
            self.connection.close()
            return self._get()

    def _get(self):
        self.connection.request("GET", "/metrics", headers=self.headers)
        answer = self.connection.getresponse()
        body = answer.read()
        if answer.status != 200:
            raise RuntimeError(f"GET /metrics: {answer.status} {body[:200]!r}")
        return body

    def close(self):
        self.connection.close()


class RawState:
    """What a scrape reads, as plain SQL through one open sqlite3 connection."""

    def __init__(self, path):
        self.conn = sqlite3.connect(path)

    def read(self):
        sources = self.conn.execute(
            "SELECT id, name, kind, tags, enabled, connected, last_collected_at, metrics,"
            " preset, collection_rate FROM pool_source ORDER BY name"
        ).fetchall()
        latest = self.conn.execute(
            "SELECT source_id, dbname, metric, lines FROM pool_latest_sample"
            " ORDER BY source_id, dbname, metric"
        ).fetchall()
        return sources, latest

    def read_and_parse(self):
        """The rows instead of the lines, each parsed: what a scrape did before
        the lines were kept."""
        latest = self.conn.execute(
            "SELECT source_id, dbname, metric, data FROM pool_latest_sample"
            " ORDER BY source_id, dbname, metric"
        ).fetchall()
        return [orjson.loads(row[3]) for row in latest]

    def close(self):
        self.conn.close()


def report(parts, size, figures, cpu):
    print(
        f"\n## A scrape's parts in process ({SOURCES} sources, {size['samples']:,} samples"
        f" in {size['families']} families, {size['bytes'] / 1e6:.1f} MB)"
    )
    print(f"  prometheus.sources()       {fmt(parts['sources'])}")
    print(f"  history.latest(lines=True) {fmt(parts['latest'])}")
    print(f"  prometheus.exposition()    {fmt(parts['exposition'])}  (every chunk)")
    per_sample = parts["exposition"]["median"] / size["samples"] * 1e6
    print(f"    {per_sample:.0f} ns a sample, reads included")
    written = parts["lines_written"]
    print(
        f"  lines written by record()  {written:.2f} s of CPU over the {SOURCES} runs,"
        f" {written / size['samples'] * 1e6:.2f} ms per 1,000 samples (once a run)"
    )
    print(f"\n## GET /metrics (gunicorn, keep-alive; target under {TARGET_MS} ms, aim {AIM_MS})")
    print(f"  {'raw SQL, one connection':30} {fmt(figures['raw'])}")
    print(f"  {'raw SQL, rows not lines, parsed':30} {fmt(figures['raw_parsed'])}")
    scrape = figures["scrape"]
    print(f"  {'GET /metrics':30} {fmt(scrape)}")
    print(
        f"  {'':30} CPU {cpu['scrape']:.0f} ms a scrape (the service's),"
        f" raw SQL {cpu['raw']:.0f} ms"
    )
    met = scrape["median"] < TARGET_MS
    print(
        f"  {'':30} {scrape['median'] / figures['raw']['median']:.1f}x raw;"
        f" target {verdict(met)}, aim {verdict(scrape['median'] < AIM_MS)}"
    )
    return met


def run(environment, agent, n=5):
    print(f"# Pool: GET /metrics with {SOURCES} sources of the standard preset")
    service = environment.service()
    token, parts, size = prepare(service, environment.cluster.port)
    raw = RawState(Path(service.env["SENTINEL_STATE_DIR"]) / "sentinel.db")
    client = Scraper(service.port, token)
    try:
        calls = {
            "raw": raw.read,
            "raw_parsed": raw.read_and_parse,
            "scrape": client.scrape,
        }
        figures = interleaved(calls, n, warmup=1, run=1)
        cpu = cpu_per_call(service, {"raw": raw.read, "scrape": calls["scrape"]}, 3)
    finally:
        client.close()
        raw.close()
        service.stop()
    met = report(parts, size, figures, cpu)
    return {
        "sources": SOURCES,
        "shape": {k: v for k, v in SHAPE.items() if isinstance(v, int)},
        "size": size,
        "parts": parts,
        "figures": figures,
        "cpu_ms": cpu,
        "target_ms": TARGET_MS,
        "aim_ms": AIM_MS,
        "met": met,
    }
