"""Activity figures: /activity with 10 and 200 idle client backends, the lock
routes with a chain of lock waits, and /activity/locktree with 200 waiters,
each beside the same SQL run straight through one open connection, and beside
the reference agent's /activity with as many backends on its own cluster."""

import select
import time
import uuid

import psycopg2
import psycopg2.extensions

from sentinel.plugins.activity.activity import SQL
from sentinel.postgres import load_sql

from .common import KeepAliveClient, fmt, interleaved, read_route_target, speed, timed

ROUTES = {
    "activity": "/activity",
    "activity_waiting": "/activity/waiting",
    "activity_blocking": "/activity/blocking",
    "locktree": "/activity/locktree",
}


class Backends:
    """Client backends on a cluster: idle ones, a lock chain, lock waiters."""

    def __init__(self, connect):
        self.connect = connect
        self.conns = []

    def idle(self, count):
        for _ in range(count):
            conn = self.connect()
            with conn.cursor() as cursor:
                cursor.execute("SELECT 1")  # the agent drops backends that never ran a query
            self.conns.append(conn)

    def holder(self, table):
        conn = self.connect()
        conn.autocommit = False
        with conn.cursor() as cursor:
            cursor.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
        self.conns.append(conn)
        return conn

    def waiters(self, dsn, sql, count):
        """`count` asynchronous connections left waiting on `sql`."""
        conns = []
        for _ in range(count):
            conn = psycopg2.connect(dsn, async_=1)
            wait(conn)
            conn.cursor().execute(sql)
            conns.append(conn)
        self.conns.extend(conns)
        return conns

    def close(self):
        for conn in reversed(self.conns):
            if not conn.closed:
                if conn.async_:
                    conn.cancel()
                conn.close()
        self.conns = []


def wait(conn):
    while True:
        state = conn.poll()
        if state == psycopg2.extensions.POLL_OK:
            return
        if state == psycopg2.extensions.POLL_READ:
            select.select([conn.fileno()], [], [])
        else:
            select.select([], [conn.fileno()], [])


def wait_until_waiting(conn, count, timeout=60):
    """Until `count` backends wait for a lock (the waiters are sent asynchronously)."""
    deadline = time.monotonic() + timeout
    while True:
        with conn.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
            if cursor.fetchone()[0] >= count:
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{count} lock waiters expected")
        time.sleep(0.05)


def raw_call(conn, name):
    """The route's SQL as the file has it, through one open connection."""
    sql = load_sql(SQL / f"{name}.sql", conn.server_version)

    def call():
        with conn.cursor() as cursor:
            cursor.execute(sql)
            cursor.fetchall()

    return call


def compare(client, headers, raw, names, n):
    calls = {
        "empty": lambda: client.request("GET", "/bench/empty"),
        "profile": lambda: client.request("GET", "/profile", headers=headers),
    }
    for name in names:
        calls[name] = lambda path=ROUTES[name]: client.request("GET", path, headers=headers)
        calls[f"{name}_raw"] = raw_call(raw, name)
    return interleaved(calls, n, warmup=10)


def report(figures, names, label, limit=None):
    print(f"  GET /bench/empty (bare route)   {fmt(figures['empty'])}")
    print(f"  GET /profile (session check)    {fmt(figures['profile'])}")
    verdicts = {}
    for name in names:
        ours, raw = figures[name]["median"], figures[f"{name}_raw"]["median"]
        print(f"  GET {ROUTES[name]:<27} {fmt(figures[name])}")
        print(f"    raw SQL, one connection       {fmt(figures[f'{name}_raw'])}")
        target = limit if limit is not None else read_route_target(raw)
        met = ours <= target
        verdicts[name] = met
        print(
            f"    => {ours / raw:.2f}x raw SQL ({ours - raw:+.2f} ms);"
            f" target {target:.2f} ms ({label}): {'MET' if met else 'MISSED'}"
        )
    return verdicts


def measure_reference(agent, counts, n=30):
    if not agent.available:
        print("\n## Reference agent: not available")
        return None
    headers = {"X-Session": agent.login()}
    figures = {}
    backends = Backends(agent.connect_postgres)
    try:
        opened = 0
        for count in counts:
            backends.idle(count - opened)
            opened = count
            figures[f"activity_{count}"] = timed(
                lambda: agent.request("GET", "/activity", headers=headers), n, warmup=3
            )
    finally:
        backends.close()
    print("\n## Reference agent 7.11 /activity (HTTPS, one TLS connection per call)")
    for count in counts:
        print(f"  {count:>3} idle backends              {fmt(figures[f'activity_{count}'])}")
    return figures


def run(environment, agent, n=300):
    print("# Activity: backends, lock waits and the lock tree")
    cluster = environment.cluster
    service = environment.service()
    environment.create_user(service, "bench", "bench-password")
    client = KeepAliveClient(service.port)
    session = client.request("POST", "/login", {"username": "bench", "password": "bench-password"})[
        "session"
    ]
    headers = {"X-Session": session}
    raw = cluster.connect()
    tables = [f"bench_activity_{uuid.uuid4().hex[:8]}" for _ in range(2)]
    for table in tables:
        cluster.execute(f"CREATE TABLE {table} (id int)")
    backends = Backends(cluster.connect)
    results, verdicts = {}, {}
    try:
        # /activity with 10 idle backends.
        backends.idle(10)
        figures = compare(client, headers, raw, ["activity"], n)
        print("\n## 10 idle client backends (gunicorn, keep-alive connection)")
        verdicts["activity_10"] = report(figures, ["activity"], "2x raw + 2 ms")["activity"]
        results["idle_10"] = figures

        # The lock routes at 10 backends: 7 idle and a chain of three
        # (A holds t1; B holds t2 and waits for t1; C waits for t2).
        backends.close()
        backends.idle(7)
        backends.holder(tables[0])
        dsn = cluster.dsn()
        backends.waiters(
            dsn,
            f"BEGIN; LOCK TABLE {tables[1]} IN ACCESS EXCLUSIVE MODE;"
            f" LOCK TABLE {tables[0]} IN ACCESS SHARE MODE",
            1,
        )
        wait_until_waiting(raw, 1)
        backends.waiters(dsn, f"SELECT * FROM {tables[1]}", 1)
        wait_until_waiting(raw, 2)
        names = ["activity", "activity_waiting", "activity_blocking", "locktree"]
        figures = compare(client, headers, raw, names, n)
        print("\n## 10 client backends, three of them in a chain of lock waits")
        for name, met in report(figures, names, "2x raw + 2 ms").items():
            verdicts[f"{name}_chain"] = met
        results["chain_10"] = figures
        backends.close()

        # /activity with 200 idle backends.
        backends.idle(200)
        figures = compare(client, headers, raw, ["activity"], n // 2)
        print("\n## 200 idle client backends")
        verdicts["activity_200"] = report(figures, ["activity"], "under 10 ms", limit=10.0)[
            "activity"
        ]
        results["idle_200"] = figures
        backends.close()

        # /activity/locktree with 200 waiters on one holder.
        backends.holder(tables[0])
        backends.waiters(dsn, f"SELECT * FROM {tables[0]}", 200)
        wait_until_waiting(raw, 200)
        names = ["locktree", "activity_waiting"]
        figures = compare(client, headers, raw, names, n // 3)
        print("\n## 200 backends waiting on one lock holder")
        report(figures, names, "for the record", limit=float("inf"))
        results["waiters_200"] = figures
    finally:
        backends.close()
        raw.close()
        client.close()
        service.stop()
        for table in tables:
            cluster.execute(f"DROP TABLE IF EXISTS {table}")

    results["reference"] = measure_reference(agent, (10, 200))
    if results["reference"]:
        for count, key in ((10, "idle_10"), (200, "idle_200")):
            ours = results[key]["activity"]["median"]
            theirs = results["reference"][f"activity_{count}"]["median"]
            print(
                f"  /activity, {count} backends: Sentinel {ours:.2f} ms vs agent {theirs:.2f} ms"
                f" ({speed(ours, theirs)})"
            )
    results["verdicts"] = verdicts
    print(f"\n  targets: {sum(verdicts.values())}/{len(verdicts)} met")
    return results
