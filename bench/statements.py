"""Statements figures: GET /statements with 50 and with 5,000 distinct
statements through gunicorn, beside the same SQL run directly through one open
psycopg2 connection and beside the reference agent; then the collector at
5,000 statements with a tenth of them active between two snapshots: its CPU,
the rows and bytes it stores, and the storage 30 days of it would take."""

import http.client
import random
import sqlite3
import statistics
import time

import psutil
import psycopg2

from sentinel import create_app, state
from sentinel.extensions import postgres
from sentinel.plugins.statements import statements
from sentinel.postgres import Connection

from .common import KeepAliveClient, fmt, interleaved, speed, timed, verdict

SIZES = (50, 5000)
WIDE_COLUMNS = 1000
# Ways to read a column: with the 1,000 columns, 5,000 distinct statements.
SHAPES = (
    "SELECT c{n} FROM bench_wide",
    "SELECT count(c{n}) FROM bench_wide",
    "SELECT max(c{n}) FROM bench_wide",
    "SELECT c{n} FROM bench_wide WHERE c{n} IS NULL",
    "SELECT min(c{n}) FROM bench_wide WHERE c{n} > 0",
)
# Real statements are longer than these: a comment brings each text to about
# 300 bytes (pg_stat_statements keeps comments, which change no queryid).
PADDING = "/* " + "bench statement text, padded as an application's would be " * 5 + "*/ "
ACTIVE_SHARE = 0.10
SNAPSHOTS = 10
INTERVAL = 300  # s: the default statements_interval
DAYS = 30


def target(raw_ms):
    """What /statements may take beside its SQL run directly: 1.5x, plus 2 ms."""
    return 1.5 * raw_ms + 2


class StreamingClient(KeepAliveClient):
    """The keep-alive client, reading chunked answers too (/statements
    streams), and `get()` for an answer's bytes: parsing 7 MB of JSON is the
    client's work, not the server's. Its buffer is a bytearray read through
    an offset, so that 7 MB are not copied again at every chunk."""

    def __init__(self, port):
        super().__init__(port)
        self.buffer = bytearray()

    def _receive(self):
        chunk = self.socket.recv(1 << 20)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        self.buffer += chunk

    def _until(self, position, marker):
        """The index of `marker` at or after `position`, receiving as needed."""
        while (found := self.buffer.find(marker, position)) < 0:
            self._receive()
        return found

    def _read_response(self):
        end = self._until(0, b"\r\n\r\n")
        head = bytes(self.buffer[:end])
        if b"transfer-encoding: chunked" not in head.lower():
            self.buffer = bytes(self.buffer)
            status, data = super()._read_response()
            self.buffer = bytearray(self.buffer)
            return status, data
        status = int(head.split(b" ", 2)[1])
        position, parts = end + 4, []
        while True:
            line_end = self._until(position, b"\r\n")
            size = int(bytes(self.buffer[position:line_end]).split(b";")[0], 16)
            start = line_end + 2
            while len(self.buffer) < start + size + 2:
                self._receive()
            parts.append(bytes(self.buffer[start : start + size]))
            position = start + size + 2
            if size == 0:
                del self.buffer[:position]
                return status, b"".join(parts)


def statement_texts(count):
    texts = [PADDING + shape.format(n=n) for shape in SHAPES for n in range(1, WIDE_COLUMNS + 1)]
    return texts[:count]


def prepare(conn, count):
    """pg_stat_statements holding `count` bench statements (and the few of
    whoever else runs): reset, then each run once."""
    with conn.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bench_wide")
        columns = ", ".join(f"c{n} int" for n in range(1, WIDE_COLUMNS + 1))
        cursor.execute(f"CREATE TABLE bench_wide ({columns})")
        cursor.execute("SELECT pg_stat_statements_reset()")
        for text in statement_texts(count):
            cursor.execute(text)
        cursor.execute("SELECT count(*) FROM pg_stat_statements")
        return cursor.fetchone()[0]


def raw_call(conn):
    """What the route asks PostgreSQL, run directly: the view's columns, then
    the entries as JSON, all fetched at once."""
    wrapped = Connection(conn)

    def call():
        with conn.cursor() as cursor:
            cursor.execute(statements.live_query(wrapped))
            return cursor.fetchall()

    return call


def agent_get(agent, path, headers):
    """GET on the agent, its answer's bytes (unparsed, as for Sentinel)."""
    connection = http.client.HTTPSConnection(
        "127.0.0.1", agent.port, context=agent.context, timeout=60
    )
    try:
        connection.request("GET", path, headers=headers)
        answer = connection.getresponse()
        data = answer.read()
        if answer.status != 200:
            raise RuntimeError(f"agent GET {path}: {answer.status} {data[:200]!r}")
        return data
    finally:
        connection.close()


def rss_mb(process):
    """Resident memory of a process and its children, in MB."""
    members = [process, *process.children(recursive=True)]
    return sum(member.memory_info().rss for member in members) / 1e6


def measure_route(environment, service, headers, agent, n):
    conn = psycopg2.connect(environment.cluster.dsn())
    conn.autocommit = True
    agent_conn = agent.connect_postgres() if agent.available else None
    agent_headers = {"X-Session": agent.login()} if agent.available else None
    server = psutil.Process(service.process.pid)
    figures = {}
    for size in SIZES:
        entries = prepare(conn, size)
        # Connected after the preparation: gunicorn closes a connection idle
        # for a few seconds.
        client = StreamingClient(service.port)
        count = n if size < 1000 else n // 5
        rss_before = rss_mb(server)
        figures[size] = interleaved(
            {
                "sentinel": lambda client=client: client.get_bytes("/statements", headers),
                "raw": raw_call(conn),
            },
            count,
            warmup=5,
        )
        figures[size]["entries"] = entries
        figures[size]["rss_growth_mb"] = rss_mb(server) - rss_before
        figures[size]["answer_bytes"] = len(client.get_bytes("/statements", headers))
        client.close()
        if agent_conn is not None:
            figures[size]["agent entries"] = prepare(agent_conn, size)
            figures[size]["agent"] = timed(
                lambda: agent_get(agent, "/statements", agent_headers),
                max(count // 3, 10),
                3,
            )
    conn.close()
    if agent_conn is not None:
        with agent_conn.cursor() as cursor:
            cursor.execute("DROP TABLE IF EXISTS bench_wide")
        agent_conn.close()
    return figures


def sqlite_bytes(path, tables):
    """Bytes the tables and their indexes take in the SQLite file (dbstat)."""
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        names = ", ".join("?" for _ in tables)
        rows = conn.execute(
            f"SELECT SUM(pgsize) FROM dbstat WHERE name IN ({names})"
            f" OR name IN (SELECT name FROM sqlite_master WHERE tbl_name IN ({names}))",
            (*tables, *tables),
        ).fetchone()
    return rows[0] or 0


def measure_collector(environment, service):
    conn = psycopg2.connect(environment.cluster.dsn())
    conn.autocommit = True
    entries = prepare(conn, 5000)
    texts = statement_texts(5000)
    settings = {
        "state_dir": service.env["SENTINEL_STATE_DIR"],
        "pg_dsn": service.env["SENTINEL_PG_DSN"],
        "redis_url": service.env["SENTINEL_REDIS_URL"],
        "log_level": "WARNING",
    }
    app = create_app(settings)
    database = f"{settings['state_dir']}/sentinel.db"
    results = {"entries": entries}
    try:
        with app.app_context():
            config = app.config["SENTINEL"]
            started, cpu = time.perf_counter(), time.process_time()
            statements.collect_and_store(postgres.pool, config)
            results["first"] = {
                "ms": (time.perf_counter() - started) * 1000,
                "cpu_ms": (time.process_time() - cpu) * 1000,
            }
            deltas_before = sqlite_bytes(database, ["statement_delta", "statement_snapshot"])
            runs = []
            rng = random.Random(13)
            for _ in range(SNAPSHOTS):
                with conn.cursor() as cursor:
                    for text in rng.sample(texts, int(len(texts) * ACTIVE_SHARE)):
                        cursor.execute(text)
                estimate_before = statements.estimated_bytes()
                started, cpu = time.perf_counter(), time.process_time()
                record = statements.collect_and_store(postgres.pool, config)
                runs.append(
                    {
                        "ms": (time.perf_counter() - started) * 1000,
                        "cpu_ms": (time.process_time() - cpu) * 1000,
                        "rows": record.moved,
                        "new": record.new,
                        "estimated_bytes": statements.estimated_bytes() - estimate_before,
                    }
                )
            deltas_after = sqlite_bytes(database, ["statement_delta", "statement_snapshot"])
            kept = sqlite_bytes(database, ["statement", "statement_baseline"])
            # Reading the texts beside reading the counters alone, at 5,000.
            with conn.cursor() as cursor:
                results["read"] = interleaved(
                    {
                        "counters": lambda: (
                            cursor.execute("SELECT * FROM pg_stat_statements(false)")
                            or cursor.fetchall()
                        ),
                        "with texts": lambda: (
                            cursor.execute("SELECT * FROM pg_stat_statements(true)")
                            or cursor.fetchall()
                        ),
                    },
                    20,
                    warmup=2,
                )
    finally:
        app.extensions["sentinel.postgres"].close()
        state.database.close_all()
        conn.close()
    results["runs"] = runs
    results["measured_bytes_per_snapshot"] = (deltas_after - deltas_before) / SNAPSHOTS
    results["statements_bytes"] = kept
    return results


def report_route(figures, agent):
    checks = {}
    print("\n## GET /statements (gunicorn, keep-alive, streamed) beside its SQL run directly")
    for size, stats in figures.items():
        ours, raw = stats["sentinel"]["median"], stats["raw"]["median"]
        bound = target(raw)
        checks[f"/statements at {size}"] = ours <= bound
        print(
            f"  {size} distinct statements ({stats['entries']} entries,"
            f" {stats['answer_bytes'] / 1e6:.2f} MB of JSON)"
        )
        print(f"      Sentinel                     {fmt(stats['sentinel'])}")
        print(f"      raw (same SQL, one conn.)    {fmt(stats['raw'])}")
        if "agent" in stats:
            theirs = stats["agent"]["median"]
            print(f"      agent 7.11 ({stats['agent entries']} entries)   {fmt(stats['agent'])}")
            print(f"      => {speed(ours, theirs)} than the agent")
        print(
            f"      => {ours / raw:.2f}x raw; within 1.5x raw + 2 ms ({bound:.3f} ms):"
            f" {verdict(ours <= bound)}; server memory grew {stats['rss_growth_mb']:.1f} MB"
            " over the calls"
        )
    if not agent.available:
        print(
            "  Reference agent: not measured (--no-reference or not available);"
            " it took 10.8 ms at 50 statements (temboard-agent-7.11.md)"
        )
    return checks


def report_collector(results):
    runs = results["runs"]
    median = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
    per_day = 86400 / INTERVAL
    measured = results["measured_bytes_per_snapshot"]
    projected = measured * per_day * DAYS + results["statements_bytes"]
    # Copying every entry at every snapshot: its counters and its text.
    average_text = statistics.mean(len(text) for text in statement_texts(5000))
    copy_row = statements.ROW_BYTES["sqlite"].delta + average_text
    copied = results["entries"] * copy_row * per_day * DAYS
    read = results["read"]
    print(
        f"\n## Collector at {results['entries']} statements, {ACTIVE_SHARE:.0%} active between"
        f" snapshots (medians of {len(runs)})"
    )
    print(
        f"  first snapshot (every text read)   {results['first']['ms']:8.1f} ms,"
        f" CPU {results['first']['cpu_ms']:.1f} ms"
    )
    print(
        f"  a snapshot                         {median['ms']:8.1f} ms,"
        f" CPU {median['cpu_ms']:.1f} ms (Sentinel's process; PostgreSQL's apart)"
    )
    print(
        f"  rows stored per snapshot           {median['rows']:8.0f}"
        f" (statements read for the first time: {median['new']:.0f})"
    )
    print(
        f"  bytes per snapshot: estimated      {median['estimated_bytes']:8.0f}"
        f", measured (SQLite dbstat) {measured:.0f}"
    )
    print(f"  statements and baselines           {results['statements_bytes'] / 1e6:8.2f} MB")
    print(
        f"  pg_stat_statements read: counters {read['counters']['median']:.2f} ms,"
        f" with texts {read['with texts']['median']:.2f} ms"
        f" ({read['with texts']['median'] / read['counters']['median']:.1f}x)"
    )
    met = projected < 1e9
    print(
        f"  projected for {DAYS} days every {INTERVAL // 60} min: {projected / 1e9:.3f} GB"
        f" (target < 1 GB: {verdict(met)}); copying every row each time: {copied / 1e9:.1f} GB"
        f" ({copied / projected:.0f}x)"
    )
    return {"projected under 1 GB": met}, median, projected


def run(environment, agent, n=100):
    print("\n# Statements: /statements beside its SQL, and the collector's cost")
    cluster = environment.cluster
    cluster.execute("ALTER SYSTEM SET pg_stat_statements.max = 10000")
    cluster.stop()
    cluster.start()
    service = environment.service()
    try:
        environment.create_user(service, "bench", "bench-password")
        client = StreamingClient(service.port)
        login = {"username": "bench", "password": "bench-password"}
        headers = {"X-Session": client.request("POST", "/login", login)["session"]}
        client.close()
        figures = measure_route(environment, service, headers, agent, n)
        collector = measure_collector(environment, service)
    finally:
        service.stop()
        cluster.execute("ALTER SYSTEM RESET pg_stat_statements.max")
        cluster.stop()
        cluster.start()
    checks = report_route(figures, agent)
    more, median, projected = report_collector(collector)
    checks.update(more)
    missed = [name for name, met in checks.items() if not met]
    print(f"\n  targets met: {len(checks) - len(missed)}/{len(checks)}")
    if missed:
        print(f"  MISSED: {', '.join(missed)}")
    return {
        "route": figures,
        "collector": {**collector, "median": median, "projected_bytes": projected},
        "checks": checks,
    }
