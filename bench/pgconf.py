"""PgConf figures: GET /pgconf/configuration (every setting, about 360) through
gunicorn, beside its SQL run straight through one open psycopg2 connection, and
beside the reference agent's same route when it runs.

The raw connection carries the options Sentinel's pool sets (statement and lock
timeouts, application_name): with them, the settings query reads the
configuration files' lines for the settings the connection set itself (to show
the server's values), so both sides run the same SQL doing the same work.

The route's answer is about 150 kB of JSON: the client takes it as bytes, as
the raw side takes rows, since parsing it is the client's work.
"""

import psycopg2

from sentinel.plugins.pgconf.pgconf import SQL
from sentinel.postgres import load_sql

from .common import KeepAliveClient, fmt, interleaved, speed, verdict

ROUTE = "/pgconf/configuration"


def target(raw_ms):
    """What the route may take: one and a half times its raw SQL, plus 2 ms."""
    return 1.5 * raw_ms + 2


def raw_call(environment):
    conn = psycopg2.connect(
        environment.cluster.dsn(),
        options="-c statement_timeout=5000 -c lock_timeout=1000",
        application_name="sentinel",
    )
    conn.autocommit = True
    sql = load_sql(SQL / "settings.sql", conn.server_version)

    def call():
        with conn.cursor() as cursor:
            cursor.execute(sql)
            cursor.fetchall()

    return conn, call


def run(environment, agent, n=300):
    print("# PgConf: every setting, by category")
    service = environment.service()
    environment.create_user(service, "bench", "bench-password")
    client = KeepAliveClient(service.port)
    login = {"username": "bench", "password": "bench-password"}
    headers = {"X-Session": client.request("POST", "/login", login)["session"]}
    conn, raw = raw_call(environment)
    try:
        rows = client.request("GET", ROUTE, headers=headers)
        count = sum(len(group["rows"]) for group in rows)
        figures = interleaved(
            {
                "empty": lambda: client.request("GET", "/bench/empty"),
                "profile": lambda: client.request("GET", "/profile", headers=headers),
                "configuration": lambda: client.get_bytes(ROUTE, headers),
                "configuration_raw": raw,
            },
            n,
            warmup=20,
        )
    finally:
        conn.close()
        client.close()
        service.stop()

    ours, raw_ms = figures["configuration"]["median"], figures["configuration_raw"]["median"]
    limit = target(raw_ms)
    met = ours <= limit
    print(f"\n## {count} settings (gunicorn, keep-alive connection)")
    print(f"  GET /bench/empty (bare route)   {fmt(figures['empty'])}")
    print(f"  GET /profile (session check)    {fmt(figures['profile'])}")
    print(f"  GET {ROUTE:<27} {fmt(figures['configuration'])}")
    print(f"    raw SQL, one connection       {fmt(figures['configuration_raw'])}")
    print(
        f"    => {ours / raw_ms:.2f}x raw SQL ({ours - raw_ms:+.2f} ms);"
        f" target {limit:.2f} ms (1.5x raw + 2 ms): {verdict(met)}"
    )
    results = {"settings": count, "figures": figures, "target_ms": limit, "met": met}

    if agent.available:
        reference = agent.time_routes([ROUTE], 30)
        theirs = reference[ROUTE]["median"]
        print(f"  {ROUTE}: Sentinel {ours:.2f} ms vs agent {theirs:.2f} ms ({speed(ours, theirs)})")
        results["reference"] = reference
    else:
        print("\n## Reference agent: not available")
        results["reference"] = None
    return results
