"""Foundation figures: the cost of the session check (/profile against a bare
route in the same gunicorn), per state backend, and login time."""

import hashlib
import http.client
import sqlite3
import uuid

import psycopg2

from .common import KeepAliveClient, fmt, interleaved, read_route_target, speed, timed

SESSION_SQL = (
    "SELECT s.id, s.expires_at, u.username FROM session s"
    " JOIN users u ON u.id = s.user_id WHERE s.token_hash = {}"
)


def new_connection_call(port, path, headers):
    def call():
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        connection.request("GET", path, headers=headers)
        connection.getresponse().read()
        connection.close()

    return call


def raw_session_lookup(database_url, session_id):
    """The session check's SQL, straight on the state database, one open connection."""
    digest = hashlib.sha256(session_id.encode()).hexdigest()
    if database_url.startswith("sqlite:///"):
        conn = sqlite3.connect(database_url.removeprefix("sqlite:///"))
        sql = SESSION_SQL.format("?")
    else:
        conn = psycopg2.connect(database_url)
        conn.autocommit = True
        sql = SESSION_SQL.format("%s")

    def call():
        cursor = conn.cursor()
        cursor.execute(sql, (digest,))
        cursor.fetchall()
        cursor.close()

    return call, conn


def measure_backend(environment, label, n, extra_env):
    service = environment.service(**extra_env)
    environment.create_user(service, "bench", "bench-password")
    client = KeepAliveClient(service.port)
    login = {"username": "bench", "password": "bench-password"}
    session_id = client.request("POST", "/login", login)["session"]
    headers = {"X-Session": session_id}

    figures = interleaved(
        {
            "empty": lambda: client.request("GET", "/bench/empty"),
            "profile": lambda: client.request("GET", "/profile", headers=headers),
        },
        n,
    )
    database_url = extra_env.get("SENTINEL_DATABASE") or (
        f"sqlite:///{service.env['SENTINEL_STATE_DIR']}/sentinel.db"
    )
    raw_call, raw_conn = raw_session_lookup(database_url, session_id)
    figures["raw"] = timed(raw_call, n)
    raw_conn.close()
    figures["profile_new_connection"] = timed(
        new_connection_call(service.port, "/profile", headers), n // 5
    )
    figures["login"] = timed(lambda: client.request("POST", "/login", login), 20, warmup=2)
    client.close()
    service.stop()

    cost = figures["profile"]["median"] - figures["empty"]["median"]
    target = read_route_target(figures["raw"]["median"])
    met = figures["profile"]["median"] <= target
    figures["met"] = met
    print(f"\n## Session check, state in {label} (gunicorn, keep-alive connection)")
    print(f"  GET /bench/empty (bare route)      {fmt(figures['empty'])}")
    print(f"  GET /profile                       {fmt(figures['profile'])}")
    print(f"  raw session SQL, one connection    {fmt(figures['raw'])}")
    print(
        f"  => the session check (an indexed read per call) costs {cost:.3f} ms over the bare"
        f" route; /profile within 2x raw + 2 ms ({target:.3f} ms): {'MET' if met else 'MISSED'}"
    )
    print(f"  GET /profile, new TCP connection   {fmt(figures['profile_new_connection'])}")
    print(f"  POST /login (argon2id)             {fmt(figures['login'])}")
    return figures


def measure_reference(agent, n):
    if not agent.available:
        print("\n## Reference agent: not available (refagent.sh not found or failed)")
        return None
    session_id = agent.login()
    headers = {"X-Session": session_id}
    figures = {
        "profile": timed(lambda: agent.request("GET", "/profile", headers=headers), n, warmup=3),
        "status": timed(lambda: agent.request("GET", "/status"), n, warmup=3),
        "login": timed(agent.login, 5, warmup=1),
    }
    print("\n## Reference agent 7.11 (HTTPS, HTTP/1.0: one TLS connection per call)")
    print(f"  GET /profile                       {fmt(figures['profile'])}")
    print(f"  GET /status                        {fmt(figures['status'])}")
    print(f"  POST /login                        {fmt(figures['login'])}")
    return figures


def run(environment, agent, n=3000):
    print("# Foundation: session check and login")
    results = {"sqlite": measure_backend(environment, "SQLite", n, {})}
    state_db = f"bench_state_{uuid.uuid4().hex[:8]}"
    environment.cluster.execute(f'CREATE DATABASE "{state_db}"')
    try:
        results["postgresql"] = measure_backend(
            environment, "PostgreSQL", n, {"SENTINEL_DATABASE": environment.cluster.url(state_db)}
        )
    finally:
        # The other suites' probes visit every database: leave the cluster as it was.
        environment.cluster.execute(f'DROP DATABASE "{state_db}" WITH (FORCE)')
    results["reference"] = measure_reference(agent, 30)
    if results["reference"]:
        ours = results["sqlite"]["profile_new_connection"]["median"]
        theirs = results["reference"]["profile"]["median"]
        print(
            f"\n  /profile, new connection each: Sentinel {ours:.2f} ms vs agent "
            f"{theirs:.2f} ms ({speed(ours, theirs)})"
        )
    return results
