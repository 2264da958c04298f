"""Monitoring figures: every probe route through gunicorn beside the same work
done directly (its SQL through one open psycopg2 connection, or its host
reads), and beside the reference agent's same probe when it runs; then the
collector run, the history route and the page's series over a full history."""

import datetime
import json

import peewee
import psycopg2
import redis as redis_client

from sentinel import create_app, host, state
from sentinel.extensions import postgres, redis
from sentinel.plugins.monitoring import charts, monitoring, probes
from sentinel.plugins.monitoring.probes import SQL
from sentinel.postgres import load_sql
from sentinel.state import MonitoringRun

from .common import KeepAliveClient, fmt, interleaved, read_route_target, speed, timed, verdict

AGENT_PROBE_MS = (17, 22)  # the reference's per-probe range (temboard-agent-7.11.md)
BLOAT = ("heap_bloat", "btree_bloat")
# Measured against their previous sample, swapped in Redis at every call: that
# round trip is part of their own work, so it is part of their baseline too.
RATE_PROBES = ("cpu", "process", "wal_files", "temp_files_size_delta")
HOST_READS = {
    "filesystems_size": host.file_systems,
    "cpu": host.proc_stat,
    "process": lambda: (host.proc_stat(), host.loadavg()),
    "memory": host.meminfo,
    "loadavg": host.loadavg,
}


def with_sample_swap(call, connection, name):
    """The call, then its sample swapped in Redis (SET ... GET) on one open
    connection, as a rate probe does."""
    sample = json.dumps({"at": 0.0, "measures": {"global": {"reset": 0, "values": {}}}})

    def swapped():
        call()
        connection.set(f"bench:samples:{name}", sample, ex=3600, get=True)

    return swapped


def raw_calls(dsn, redis_url):
    """Each probe's own work done directly: its SQL on one connection opened
    once, or its host reads, and for a rate probe its sample's swap in Redis
    on one open connection. The bloat probes get two: with a connection per
    database opened once (as Sentinel's pool keeps them, within its size), and
    with a new connection to each database at every call."""
    samples = redis_client.Redis.from_url(redis_url)
    main = psycopg2.connect(dsn)
    main.autocommit = True
    version = main.server_version
    opened = [main]

    def query(conn, sql):
        with conn.cursor() as cursor:
            cursor.execute(sql)
            return cursor.fetchall()

    databases = [name for (name,) in query(main, load_sql(SQL / "databases.sql", version))]
    per_database = {}
    for name in databases:
        conn = psycopg2.connect(psycopg2.extensions.make_dsn(dsn, dbname=name))
        conn.autocommit = True
        per_database[name] = conn
        opened.append(conn)

    def sql_call(name):
        sql = load_sql(SQL / f"{name}.sql", version)
        return lambda: query(main, sql)

    def bloat_open(name):
        sql = load_sql(SQL / f"{name}.sql", version)

        def call():
            query(main, load_sql(SQL / "databases.sql", version))
            for conn in per_database.values():
                query(conn, sql)

        return call

    def bloat_connecting(name):
        sql = load_sql(SQL / f"{name}.sql", version)

        def call():
            for row in query(main, load_sql(SQL / "databases.sql", version)):
                conn = psycopg2.connect(psycopg2.extensions.make_dsn(dsn, dbname=row[0]))
                try:
                    query(conn, sql)
                finally:
                    conn.close()

        return call

    calls = {}
    for name in probes.NAMES:
        if name in HOST_READS:
            calls[name] = HOST_READS[name]
        elif name in BLOAT:
            calls[name] = bloat_open(name)
            calls[f"{name} (connecting)"] = bloat_connecting(name)
        else:
            calls[name] = sql_call(name)
        if name in RATE_PROBES:
            calls[name] = with_sample_swap(calls[name], samples, name)
    return calls, opened


def measure_reference(agent, n):
    if not agent.available:
        print("\n## Reference agent: not measured (--no-reference or not available)")
        return None
    paths = agent.time_routes([f"/monitoring/probe/{name}" for name in probes.NAMES], n)
    return {path.rsplit("/", 1)[1]: stats for path, stats in paths.items()}


def measure_probes(client, headers, dsn, redis_url, n):
    raw, connections = raw_calls(dsn, redis_url)
    figures = {}
    for name in probes.NAMES:
        count = n // 10 if name in BLOAT else n
        calls = {
            "sentinel": lambda name=name: client.request(
                "GET", f"/monitoring/probe/{name}", headers=headers
            ),
            "raw": raw[name],
            # An authenticated route doing nothing: HTTP, gunicorn and the session check.
            "floor": lambda: client.request("GET", "/profile", headers=headers),
        }
        if name in BLOAT:
            calls["raw, connecting to each db"] = raw[f"{name} (connecting)"]
        figures[name] = interleaved(calls, count, warmup=3 if name in BLOAT else 20)
    for conn in connections:
        conn.close()
    return figures


def fill_history(app, count, interval):
    """`count` copies of a real run, one every `interval` seconds up to now."""
    with app.app_context():
        output = monitoring.collect(postgres.pool, redis.samples, app.config["SENTINEL"])
        text = json.dumps(output, separators=(",", ":"))
        now = state.utcnow().replace(microsecond=0)
        with state.database.atomic():
            for age in range(count):
                moment = now - datetime.timedelta(seconds=age * interval)
                MonitoringRun.create(collected_at=moment, data=text)
    return len(text)


def run(environment, agent, n=300):
    print("# Monitoring: probe routes beside their own work done directly")
    service = environment.service()
    environment.create_user(service, "bench", "bench-password")
    client = KeepAliveClient(service.port)
    login = {"username": "bench", "password": "bench-password"}
    headers = {"X-Session": client.request("POST", "/login", login)["session"]}

    figures = measure_probes(client, headers, environment.cluster.dsn(), environment.redis.url, n)
    results = {"probes": figures, "checks": {}}
    print("\n## Probes (gunicorn, keep-alive) beside the same work done directly")
    for name, stats in figures.items():
        ours, raw = stats["sentinel"]["median"], stats["raw"]["median"]
        bound = read_route_target(raw)
        met = ours <= bound
        results["checks"][name] = met
        print(f"  GET /monitoring/probe/{name}")
        print(f"      Sentinel                     {fmt(stats['sentinel'])}")
        label = {"heap_bloat": "raw, connections kept", "btree_bloat": "raw, connections kept"}.get(
            name, "raw, with the sample swap" if name in RATE_PROBES else "raw"
        )
        print(f"      {label:28} {fmt(stats['raw'])}")
        if name in BLOAT:
            print(f"      raw, connecting to each db   {fmt(stats['raw, connecting to each db'])}")
        print(f"      GET /profile (floor)         {fmt(stats['floor'])}")
        beyond = ours - stats["floor"]["median"]
        print(
            f"      => {ours / raw:.2f}x raw; within 2x raw + 2 ms ({bound:.3f} ms): "
            f"{verdict(met)}; beyond the floor {beyond:.3f} ms for {raw:.3f} ms of raw work"
        )

    # The collector, the history route and the page's series on a full history.
    settings = {
        "state_dir": service.env["SENTINEL_STATE_DIR"],
        "pg_dsn": service.env["SENTINEL_PG_DSN"],
        "redis_url": service.env["SENTINEL_REDIS_URL"],
    }
    app = create_app(settings)
    try:
        with app.app_context():
            results["collector"] = timed(
                lambda: monitoring.collect_and_store(
                    postgres.pool, redis.samples, app.config["SENTINEL"]
                ),
                10,
                warmup=2,
            )
        config = app.config["SENTINEL"]
        kept = config["monitoring_retention"] // config["monitoring_interval"]
        size = fill_history(app, kept, config["monitoring_interval"])
        start = (state.utcnow() - datetime.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        results["history"] = interleaved(
            {
                "newest": lambda: client.request("GET", "/monitoring/history", headers=headers),
                "last hour (50)": lambda: client.request(
                    "GET", f"/monitoring/history?start={start}", headers=headers
                ),
            },
            n // 10,
            warmup=3,
        )
        with app.app_context():
            kept = app.config["SENTINEL"]["monitoring_retention"]
            results["page series"] = timed(lambda: charts.of_kept_runs(kept), 10, warmup=2)
            newest = MonitoringRun.select(peewee.fn.MAX(MonitoringRun.id)).scalar()
            results["page refresh"] = timed(
                lambda: charts.of_kept_runs(kept, after=newest - 1), 100, warmup=5
            )
    finally:
        app.extensions["sentinel.postgres"].close()
        state.database.close_all()
    print("\n## Collector and history")
    print(f"  one collector run (every probe)    {fmt(results['collector'])}")
    print(f"  {kept} runs kept, {size / 1024:.1f} kB of JSON each")
    print(f"  GET /monitoring/history (newest)   {fmt(results['history']['newest'])}")
    print(f"  GET /monitoring/history?start=-1h  {fmt(results['history']['last hour (50)'])}")
    print(f"  page series, first load ({kept})  {fmt(results['page series'])}")
    print(f"  page series, refresh (1 new run)   {fmt(results['page refresh'])}")

    results["reference"] = measure_reference(agent, 30)
    if results["reference"]:
        print("\n## Sentinel beside the reference agent (medians)")
        for name in probes.NAMES:
            ours = figures[name]["sentinel"]["median"]
            theirs = results["reference"][name]["median"]
            print(f"  {name:24} {ours:8.2f} ms vs {theirs:8.2f} ms ({speed(ours, theirs)})")
        for name in BLOAT:
            ours = figures[name]["sentinel"]["median"]
            met = ours <= results["reference"][name]["median"]
            results["checks"][f"{name} at least as fast as the agent"] = met
            print(f"  {name}: at least as fast as the agent: {verdict(met)}")
    else:
        low, high = AGENT_PROBE_MS
        print(f"\n  The reference pays {low}-{high} ms per probe (temboard-agent-7.11.md).")
    missed = [name for name, met in results["checks"].items() if not met]
    floor = max(stats["floor"]["median"] for stats in figures.values())
    print(f"\n  targets met: {len(results['checks']) - len(missed)}/{len(results['checks'])}")
    if missed:
        print(f"  MISSED: {', '.join(missed)}")
        print(f"  (an authenticated no-op route took up to {floor:.3f} ms in this run)")
    client.close()
    service.stop()
    return results
