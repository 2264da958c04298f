"""Dashboard figures: each read route through gunicorn beside the same reads done
directly (its SQL through one open psycopg2 connection, its host reads, its
state-database reads), and beside the reference agent when it runs."""

import json
import sqlite3
import subprocess
import sys
import time

import psutil
import psycopg2

from sentinel.plugins.dashboard.dashboard import SQL
from sentinel.postgres import load_sql

from .common import ROOT, KeepAliveClient, fmt, interleaved, read_route_target, speed, verdict

SAMPLES = 150  # a full default history
AGENT_LIVE_MS = 117.8  # the reference's /dashboard/live median (temboard-agent-7.11.md)

# The collector's own code on the service's state, as the worker runs it.
COLLECT = """
import sys
from sentinel import create_app_or_exit
from sentinel.extensions import postgres, redis
from sentinel.plugins.dashboard import dashboard
app = create_app_or_exit()
with app.app_context():
    for _ in range(int(sys.argv[1])):
        dashboard.collect_and_store(postgres.pool, redis.samples, app.config["SENTINEL"])
"""

LAST_SAMPLE_SQL = "SELECT data FROM dashboard_sample ORDER BY id DESC LIMIT ?"
NOTIFICATIONS_SQL = (
    "SELECT created_at, username, message FROM notification"
    " ORDER BY created_at DESC, id DESC LIMIT 15"
)


def fill_history(service, count):
    subprocess.run(
        [sys.executable, "-c", COLLECT, str(count)],
        cwd=ROOT,
        env=service.env,
        check=True,
        capture_output=True,
    )


def host_reads():
    """What the host part reads: CPU times, memory, load average."""
    psutil.cpu_times()
    psutil.virtual_memory()
    psutil.getloadavg()


def raw_calls(environment, state_path):
    """Each route's reads done directly, on connections opened once."""
    pg = psycopg2.connect(environment.cluster.dsn())
    pg.autocommit = True
    version = pg.server_version
    instance = load_sql(SQL / "instance.sql", version)
    databases = load_sql(SQL / "databases.sql", version)
    state = sqlite3.connect(state_path)

    def query(sql):
        with pg.cursor() as cursor:
            cursor.execute(sql)
            cursor.fetchall()

    def stored(limit):
        rows = state.execute(LAST_SAMPLE_SQL, (limit,)).fetchall()
        return [json.loads(data) for (data,) in rows]

    def notifications():
        state.execute(NOTIFICATIONS_SQL).fetchall()

    calls = {
        # /dashboard serves what the collector read: held against that SQL, as
        # the reference's figures are; its own state reads are shown beside.
        "/dashboard": lambda: (query(instance), query(databases), host_reads()),
        "/dashboard/live": lambda: (
            query(instance),
            query(databases),
            host_reads(),
            notifications(),
        ),
        "/dashboard/history": lambda: stored(SAMPLES),
        "/dashboard/info": lambda: query(instance),
        "/dashboard/databases": lambda: query(databases),
        "/dashboard/cpu": psutil.cpu_times,
        "state reads of /dashboard": lambda: (stored(1), notifications()),
    }
    return calls, (pg, state)


def measure_reference(agent, n):
    if not agent.available:
        print("\n## Reference agent: not measured (--no-reference or not available)")
        return None
    return agent.time_routes(("/dashboard", "/dashboard/live"), n)


def run(environment, agent, n=500):
    print("# Dashboard: read routes beside their direct reads")
    service = environment.service()
    environment.create_user(service, "bench", "bench-password")
    started = time.perf_counter()
    fill_history(service, SAMPLES)
    collect_ms = (time.perf_counter() - started) * 1000 / SAMPLES
    print(f"  {SAMPLES} samples collected ({collect_ms:.1f} ms each, process start included)")

    client = KeepAliveClient(service.port)
    login = {"username": "bench", "password": "bench-password"}
    headers = {"X-Session": client.request("POST", "/login", login)["session"]}
    raw, connections = raw_calls(environment, f"{service.env['SENTINEL_STATE_DIR']}/sentinel.db")
    routes = [name for name in raw if name.startswith("/")]
    calls = {
        route: lambda route=route: client.request("GET", route, headers=headers) for route in routes
    }
    # The floor every route stands on: HTTP through gunicorn, and the session check.
    calls["/bench/empty"] = lambda: client.request("GET", "/bench/empty")
    calls["/profile"] = lambda: client.request("GET", "/profile", headers=headers)
    ours = interleaved(calls, n)
    direct = interleaved(raw, n)
    client.close()
    for connection in connections:
        connection.close()

    print("\n## Sentinel (gunicorn, keep-alive) beside the same reads done directly")
    print(f"  GET /bench/empty (bare route)    {fmt(ours['/bench/empty'])}")
    print(f"  GET /profile (session check)     {fmt(ours['/profile'])}")
    results = {"sentinel": ours, "raw": direct, "checks": {}}
    floor = ours["/bench/empty"]["median"]
    for route in routes:
        bound = read_route_target(direct[route]["median"])
        met = ours[route]["median"] <= bound
        results["checks"][route] = met
        print(f"  GET {route:28} {fmt(ours[route])}")
        print(f"      direct reads                 {fmt(direct[route])}")
        print(
            f"      => within 2x direct + 2 ms ({bound:.3f} ms): {verdict(met)};"
            f" beyond the bare route: {ours[route]['median'] - floor:.3f} ms"
        )
    print(f"  state reads of /dashboard, direct {fmt(direct['state reads of /dashboard'])}")

    results["reference"] = measure_reference(agent, 30)
    theirs = (
        results["reference"]["/dashboard/live"]["median"] if results["reference"] else AGENT_LIVE_MS
    )
    source = "measured now" if results["reference"] else "recorded in temboard-agent-7.11.md"
    live = ours["/dashboard/live"]["median"]
    met = live * 10 <= theirs
    results["checks"]["live 10x faster than the agent"] = met
    print(
        f"\n  /dashboard/live: Sentinel {live:.2f} ms vs agent {theirs:.1f} ms ({source}): "
        f"{speed(live, theirs)} (target: at least 10x faster): {verdict(met)}"
    )
    if results["reference"]:
        theirs_last = results["reference"]["/dashboard"]["median"]
        ours_last = ours["/dashboard"]["median"]
        print(
            f"  /dashboard: Sentinel {ours_last:.2f} ms vs agent {theirs_last:.2f} ms "
            f"({speed(ours_last, theirs_last)})"
        )
    service.stop()
    return results
