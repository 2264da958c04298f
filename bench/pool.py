"""Pool figures: each dialect's list and show routes with 1,000 sources,
through gunicorn, beside the raw SQL reading the same rows through one open
sqlite3 connection to the state database (the default SQLite state).

The sources are made through the store in a fresh state: each with tags and
a password, one in five with a replication slot, one in ten a replica with a
primary's password, one in ten with custom metric intervals instead of a
preset. The routes are called with an API token, where each dialect's clients
send it. A route that is not served yet (404) is reported missing.

Before the routes, the store's all() and get() are timed in process beside
the same raw SQL: what the routes build on. After the latencies, the CPU time
a call costs (the service's workers' for a route): on a machine busy with
other work, latency grows with the queue for a core, CPU time much less, so
its ratio to the raw SQL's tells the code's cost apart from the machine's.
"""

import sqlite3
import time
from pathlib import Path

import psutil

from sentinel import create_app, state
from sentinel.auth import accounts, sessions
from sentinel.pool import secrets, store

from .common import fmt, interleaved, timed, verdict
from .statements import StreamingClient

SOURCES = 1000
SHOWN = "source-0500"  # the source the show routes ask for
LIST_TARGET_MS = 50
SHOW_TARGET_MS = 5
# Each dialect's list and show paths, and where its clients send the token.
DIALECTS = {
    "Datasentinel": (
        "/ds-api/pool/pg-instances",
        "/ds-api/pool/pg-instances/{name}",
        lambda token: {"user-token": token},
    ),
    "pgwatch": ("/source", "/source/{name}", lambda token: {"Token": token}),
    "Sequin": (
        "/api/postgres_databases",
        "/api/postgres_databases/{name}",
        lambda token: {"Authorization": f"Bearer {token}"},
    ),
}


class Client(StreamingClient):
    """The keep-alive client, telling a route's status without raising, and
    connecting again when gunicorn closed the connection after it sat idle
    past the keep-alive (5 s) while the other routes ran: that happens on a
    run's first call, which interleaved() does not time."""

    def __init__(self, port):
        super().__init__(port)
        self.port = port

    def answer(self, path, headers):
        lines = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        self.socket.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        return self._read_response()

    def get_bytes(self, path, headers):
        try:
            return super().get_bytes(path, headers)
        except ConnectionError:
            self.close()
            super().__init__(self.port)
            return super().get_bytes(path, headers)


def source_fields(number, cluster_port):
    fields = {
        "name": f"source-{number:04d}",
        "host": "127.0.0.1",
        "port": cluster_port,
        "dbname": f"app_{number % 20}",
        "user": "monitor",
        "password": f"monitor-password-{number:04d}",
        "tags": {"env": ("prod", "staging", "dev")[number % 3], "team": f"team-{number % 7}"},
        "group": ("eu", "us")[number % 2],
        "preset": "basic",
    }
    if number % 5 == 0:
        fields["replication_slots"] = [
            {"publication_name": "orders", "slot_name": f"orders_{number:04d}"}
        ]
    if number % 10 == 1:
        fields["primary_host"] = "127.0.0.1"
        fields["primary_user"] = "replicator"
        fields["primary_password"] = f"primary-password-{number:04d}"
    if number % 10 == 2:
        fields["preset"] = None
        fields["metrics"] = {"db_stats": 60, "backends": 30, "locks": 120}
    return fields


def prepare(service, cluster_port):
    """1,000 sources and an admin's API token in the service's state, made
    in this process through the store; and store.all() and get() timed
    beside the raw SQL."""
    settings = {
        "state_dir": service.env["SENTINEL_STATE_DIR"],
        "pg_dsn": service.env["SENTINEL_PG_DSN"],
        "redis_url": service.env["SENTINEL_REDIS_URL"],
        "log_level": "WARNING",
    }
    app = create_app(settings)
    raw = RawState(Path(settings["state_dir"]) / "sentinel.db")
    try:
        with app.app_context():
            for number in range(SOURCES):
                store.create(source_fields(number, cluster_port))
            accounts.create_user("bench", "bench-password", "admin")
            token = sessions.create_token(accounts.get_user("bench"), "bench")
            in_process = interleaved(
                {
                    "all": store.all,
                    "all_raw": raw.list,
                    "get": lambda: store.get(SHOWN),
                    "get_raw": raw.show,
                },
                30,
                warmup=3,
                run=5,
            )
            # What every list would add without the obfuscated forms kept in
            # memory, and what a worker's first list does add.
            tokens = [
                row[0] for row in raw.conn.execute("SELECT encrypted_password FROM pool_source")
            ]
            in_process["decrypt"] = timed(lambda: [secrets.decrypt(t) for t in tokens], 10, 1)
    finally:
        app.extensions["sentinel.postgres"].close()
        app.extensions["sentinel.redis"].close()
        state.database.close_all()
    return token, raw, in_process


class RawState:
    """What the store reads, as plain SQL through one open sqlite3
    connection: every source and every slot, or one source and its slots."""

    def __init__(self, path):
        self.conn = sqlite3.connect(path)

    def list(self):
        sources = self.conn.execute("SELECT * FROM pool_source ORDER BY name").fetchall()
        slots = self.conn.execute(
            "SELECT * FROM pool_replication_slot ORDER BY slot_name"
        ).fetchall()
        return sources, slots

    def show(self):
        source = self.conn.execute("SELECT * FROM pool_source WHERE name = ?", (SHOWN,)).fetchone()
        slots = self.conn.execute(
            "SELECT * FROM pool_replication_slot WHERE source_id = ? ORDER BY slot_name",
            (source[0],),
        ).fetchall()
        return source, slots

    def close(self):
        self.conn.close()


def served_routes(port, token):
    """The routes that answer 200 now, each with a keep-alive connection of
    its own, and those that do not, with their status."""
    served, missing = {}, {}
    for dialect, (list_path, show_path, auth) in DIALECTS.items():
        headers = auth(token)
        for kind, path in (("list", list_path), ("show", show_path.format(name=SHOWN))):
            client = Client(port)
            status, body = client.answer(path, headers)
            if status == 200:
                served[(dialect, kind)] = (client, path, headers, len(body))
            else:
                client.close()
                missing[(dialect, kind)] = (path, status, body[:120])
    return served, missing


def route_calls(served, raw, kind, floor):
    """The calls timed together: the raw SQL and each dialect's route of
    `kind`; beside the show routes, a bare route (HTTP and Flask alone)."""
    calls = {"raw": raw.list if kind == "list" else raw.show}
    if kind == "show":
        calls["empty"] = lambda: floor.get_bytes("/bench/empty", {})
    for (dialect, route_kind), (client, path, headers, _) in served.items():
        if route_kind == kind:
            calls[dialect] = lambda client=client, path=path, headers=headers: client.get_bytes(
                path, headers
            )
    return calls


def cpu_per_call(service, calls, n):
    """The CPU time (user and system) each call costs: the service's workers'
    for a route, this thread's for the raw SQL. Unlike latency, a machine busy
    with other work hardly changes it; the clock ticks are 10 ms, so `n`
    calls should take half a second or more."""
    workers = psutil.Process(service.process.pid).children(recursive=True)

    def served_cpu():
        return sum(sum(worker.cpu_times()[:2]) for worker in workers)

    figures = {}
    for name, call in calls.items():
        clock = time.thread_time if name == "raw" else served_cpu
        call()
        started = clock()
        for _ in range(n):
            call()
        figures[name] = (clock() - started) / n * 1000
    return figures


def report(in_process, figures, cpu, served, missing):
    print(f"\n## The store in process, {SOURCES} sources (SQLite state)")
    for name, label in (("all", "store.all()"), ("get", f"store.get({SHOWN!r})")):
        ours, raw = in_process[name], in_process[f"{name}_raw"]
        ratio = ours["median"] / raw["median"]
        print(f"  {label:28} {fmt(ours)}")
        print(f"    raw SQL, one connection    {fmt(raw)}  => {ratio:.2f}x raw")
    print(f"  Fernet decrypt of {SOURCES} passwords {fmt(in_process['decrypt'])}")
    checks = {}
    for kind, target in (("list", LIST_TARGET_MS), ("show", SHOW_TARGET_MS)):
        print(f"\n## {kind} routes (gunicorn, keep-alive; target under {target} ms)")
        raw = figures[kind]["raw"]["median"]
        print(f"  {'raw SQL, one connection':52} {fmt(figures[kind]['raw'])}")
        print(f"  {'':12}   CPU {cpu[kind]['raw']:.2f} ms a call")
        if "empty" in figures[kind]:
            print(f"  {'GET /bench/empty (bare route)':52} {fmt(figures[kind]['empty'])}")
            print(f"  {'':12}   CPU {cpu[kind]['empty']:.2f} ms a call")
        for dialect, (list_path, show_path, _) in DIALECTS.items():
            path = list_path if kind == "list" else show_path.format(name=SHOWN)
            if (dialect, kind) in missing:
                _, status, body = missing[(dialect, kind)]
                print(f"  {dialect:12} GET {path:35} MISSING ({status} {body!r})")
                checks[f"{dialect} {kind}"] = None
                continue
            stats = figures[kind][dialect]
            met = stats["median"] < target
            checks[f"{dialect} {kind}"] = met
            size = served[(dialect, kind)][3]
            print(f"  {dialect:12} GET {path:35} {fmt(stats)}")
            print(
                f"  {'':12}   {size:,} bytes; {stats['median'] / raw:.2f}x raw"
                f" ({stats['median'] - raw:+.2f} ms): {verdict(met)}"
            )
            spent, raw_spent = cpu[kind][dialect], cpu[kind]["raw"]
            print(f"  {'':12}   CPU {spent:.2f} ms a call, {spent / raw_spent:.2f}x raw")
    return checks


def run(environment, agent, n=100):
    print(f"# Pool: each dialect's list and show routes with {SOURCES} sources")
    service = environment.service()
    token, raw, in_process = prepare(service, environment.cluster.port)
    served, missing = served_routes(service.port, token)
    floor = Client(service.port)
    figures, cpu = {}, {}
    try:
        for kind, cpu_calls in (("list", 30), ("show", 300)):
            calls = route_calls(served, raw, kind, floor)
            # Runs of 5: a list call takes tens of ms, and no connection
            # should sit idle past gunicorn's keep-alive while the others run.
            figures[kind] = interleaved(calls, n, warmup=5, run=5)
            cpu[kind] = cpu_per_call(service, calls, cpu_calls)
    finally:
        for client, *_ in served.values():
            client.close()
        floor.close()
        raw.close()
        service.stop()
    checks = report(in_process, figures, cpu, served, missing)
    return {
        "sources": SOURCES,
        "in_process": in_process,
        "figures": figures,
        "cpu_ms": cpu,
        "targets_ms": {"list": LIST_TARGET_MS, "show": SHOW_TARGET_MS},
        "met": checks,
        "missing": {f"{dialect} {kind}": path for (dialect, kind), (path, *_) in missing.items()},
    }
