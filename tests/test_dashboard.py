"""The Dashboard plugin: its collector in a real worker, its API against the
shapes temBoard agent 7.11 serves, and PostgreSQL stopped for real."""

import json
import platform
import re
import signal
import subprocess
import sys
import threading
import time

import psutil
import psycopg2
import pytest
from polling import wait_for

from sentinel import create_app, host, samples, state
from sentinel.core import notifications
from sentinel.extensions import postgres, redis
from sentinel.plugins.dashboard import dashboard
from sentinel.state import DashboardSample

AGENT_KEY = "dashboard-agent-key-0123456789"

# Shapes as temBoard agent 7.11 serves them (observed on PostgreSQL 15).
STAMPED_COUNT = {"nb": int, "time": float}
DATABASES = {
    "databases": int,
    "total_size": str,
    "time": str,
    "total_commit": int,
    "total_rollback": int,
    "timestamp": float,
}
CPU = {"user": float, "system": float, "idle": float, "iowait": float, "steal": float}
MEMORY = {"total": int, "free": float, "active": float, "cached": float}
INSTANCE = {
    "buffers": STAMPED_COUNT,
    "hitratio": float,
    "active_backends": STAMPED_COUNT,
    "max_connections": int,
    "databases": DATABASES,
    "pg_uptime": int,
    "pg_version": str,
    "pg_data": str,
    "pg_port": str,
}
HOST = {
    "cpu": CPU,
    "loadaverage": float,
    "memory": MEMORY,
    "hostname": str,
    "os_version": str,
    "linux_distribution": str,
    "cpu_models": "models",
    "n_cpu": int,
    "timestamp": float,
}
NOTIFICATIONS = {"notifications": "notifications"}
SAMPLE = {**INSTANCE, **HOST}
INFO = {
    "hostname": str,
    "os_version": str,
    "pg_uptime": int,
    "pg_version": str,
    "pg_data": str,
    "pg_port": str,
}
SINGLE_KEY_ROUTES = {
    "/dashboard/buffers": {"buffers": STAMPED_COUNT},
    "/dashboard/hitratio": {"hitratio": float},
    "/dashboard/active_backends": {"active_backends": STAMPED_COUNT},
    "/dashboard/cpu": {"cpu": CPU},
    "/dashboard/loadaverage": {"loadaverage": float},
    "/dashboard/memory": {"memory": MEMORY},
    "/dashboard/hostname": {"hostname": str},
    "/dashboard/os_version": {"os_version": str},
    "/dashboard/pg_version": {"pg_version": str},
    "/dashboard/n_cpu": {"n_cpu": int},
    "/dashboard/databases": {"databases": DATABASES},
    "/dashboard/max_connections": {"max_connections": int},
    "/dashboard/info": INFO,
    "/dashboard/config": {"scheduler_interval": int, "history_length": int},
}
READ_NOW_FROM_POSTGRES = [
    "/dashboard/buffers",
    "/dashboard/hitratio",
    "/dashboard/active_backends",
    "/dashboard/pg_version",
    "/dashboard/databases",
    "/dashboard/max_connections",
    "/dashboard/info",
]
EVERY_ROUTE = ["/dashboard", "/dashboard/live", "/dashboard/history", *SINGLE_KEY_ROUTES]


def assert_shape(value, shape, where="body"):
    """`value` has exactly the keys of `shape`, each of the JSON type given."""
    if isinstance(shape, dict):
        assert isinstance(value, dict), f"{where}: {value!r} is not an object"
        assert set(value) == set(shape), f"{where}: keys {sorted(value)} != {sorted(shape)}"
        for key, inner in shape.items():
            assert_shape(value[key], inner, f"{where}.{key}")
    elif shape == "models":
        assert value and all(
            isinstance(name, str) and type(count) is int for name, count in value.items()
        ), f"{where}: {value!r}"
    elif shape == "notifications":
        assert isinstance(value, list), f"{where}: {value!r}"
        for item in value:
            assert_shape(item, {"date": str, "username": str, "message": str}, where)
    else:
        assert type(value) is shape, f"{where}: {value!r} is not {shape.__name__}"


def close(app):
    """Release what an app of the test's own holds: its pool and its Redis client."""
    app.extensions["sentinel.postgres"].close()
    app.extensions["sentinel.redis"].close()


def collect(app):
    """One run of the collector job, in this process."""
    with app.app_context():
        return dashboard.collect_and_store(postgres.pool, redis.samples, app.config["SENTINEL"])


@pytest.fixture
def settings(settings):
    return {**settings, "agent_key": AGENT_KEY}


@pytest.fixture
def headers(auth):
    return auth.headers()


def stored_count(app):
    with app.app_context():
        count = DashboardSample.select().count()
    state.database.close()
    return count


# -- shapes ------------------------------------------------------------------------


def test_dashboard_before_the_first_sample_has_only_the_notifications(client, headers):
    answer = client.get("/dashboard", headers=headers)
    assert answer.status_code == 200
    assert_shape(answer.get_json(), NOTIFICATIONS)
    assert answer.get_json()["notifications"][0]["message"] == "Login"


def test_dashboard_serves_the_last_sample_with_the_newest_15_notifications(app, client, headers):
    collect(app)
    last = collect(app)
    with app.app_context():
        for number in range(20):
            notifications.record("alice", f"event {number}")
    body = client.get("/dashboard", headers=headers).get_json()
    assert_shape(body, {**SAMPLE, **NOTIFICATIONS})
    assert body["timestamp"] == last["timestamp"]
    assert [item["message"] for item in body["notifications"]] == [
        f"event {number}" for number in range(19, 4, -1)
    ]


def test_live_has_the_agent_keys_and_types(client, headers):
    body = client.get("/dashboard/live", headers=headers).get_json()
    assert_shape(body, {**SAMPLE, **NOTIFICATIONS})


def test_live_values_read_like_the_agent(client, headers, settings, pg_cluster):
    body = client.get("/dashboard/live", headers=headers).get_json()
    assert body["pg_version"].startswith("PostgreSQL 15.")  # the full version() string
    assert body["pg_port"] == str(pg_cluster.port)
    assert body["pg_data"] == str(pg_cluster.data)
    assert body["max_connections"] == 300
    assert body["hostname"] == "sentinel.test"
    assert body["os_version"] == platform.release()  # the kernel release alone
    assert body["n_cpu"] == psutil.cpu_count()
    assert sum(body["cpu_models"].values()) == psutil.cpu_count()
    assert body["memory"]["total"] == psutil.virtual_memory().total // 1024
    assert re.fullmatch(r"\d+ (bytes|kB|MB|GB|TB)", body["databases"]["total_size"])
    assert re.fullmatch(r"\d\d:\d\d", body["databases"]["time"])
    assert 0 <= body["hitratio"] <= 100


@pytest.mark.parametrize("route", list(SINGLE_KEY_ROUTES))
def test_single_key_routes_have_the_agent_keys_and_types(client, headers, route):
    answer = client.get(route, headers=headers)
    assert answer.status_code == 200
    assert_shape(answer.get_json(), SINGLE_KEY_ROUTES[route])


def test_os_version_is_prefixed_with_the_system_on_its_own_routes(client, headers):
    release = platform.release()
    assert client.get("/dashboard/os_version", headers=headers).get_json() == {
        "os_version": f"Linux {release}"
    }
    assert client.get("/dashboard/info", headers=headers).get_json()["os_version"] == (
        f"Linux {release}"
    )


def test_config_reflects_the_settings(settings, make_user):
    app = create_app({**settings, "dashboard_interval": 5, "dashboard_history": 42})
    try:
        make_user()
        client = app.test_client()
        session = client.post("/login", json={"username": "alice", "password": "alice-password"})
        answer = client.get("/dashboard/config", headers={"X-Session": session.json["session"]})
        assert answer.get_json() == {"scheduler_interval": 5, "history_length": 42}
    finally:
        close(app)


def test_the_trailing_slash_is_not_the_dashboard(client, headers):
    assert client.get("/dashboard/", headers=headers).status_code == 404


# -- authentication ----------------------------------------------------------------------


@pytest.mark.parametrize("route", EVERY_ROUTE)
def test_the_agent_key_is_accepted_on_every_route(client, route):
    assert client.get(f"{route}?key={AGENT_KEY}").status_code == 200
    assert client.get(route, headers={"X-TemBoard-Agent-Key": AGENT_KEY}).status_code == 200


@pytest.mark.parametrize("route", ["/dashboard", "/dashboard/live", "/dashboard/cpu"])
def test_a_wrong_key_is_refused_even_with_a_session(client, headers, route):
    answer = client.get(f"{route}?key=wrong", headers=headers)
    assert answer.status_code == 401
    assert answer.get_json() == {"error": "Invalid key"}


@pytest.mark.parametrize("route", ["/dashboard", "/dashboard/live", "/dashboard/history"])
def test_no_session_is_406(client, route):
    answer = client.get(route)
    assert answer.status_code == 406
    assert answer.get_json() == {"error": "Parameter 'X-Session' is malformed."}


# -- what the figures measure ----------------------------------------------------------------


def sleep_in_backend(conn, seconds):
    """Run pg_sleep in a thread; the backend is active until cancelled."""

    def run():
        try:
            with conn.cursor() as cursor:
                cursor.execute("SELECT pg_sleep(%s)", (seconds,))
        except psycopg2.Error:
            pass  # cancelled when the test ends

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_active_backends_counts_running_queries(client, headers, pg_connections, pg_cluster):
    for _ in range(3):
        sleep_in_backend(pg_connections(), 60)
    wait_for(
        lambda: (
            pg_cluster.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep%%'"
                " AND state = 'active'"
            )[0][0]
            == 3
        ),
        10,
    )
    counted = client.get("/dashboard/active_backends", headers=headers).get_json()
    assert counted["active_backends"]["nb"] >= 3


def test_active_backends_leaves_out_sentinels_own_query(client, headers, pg_cluster):
    # On an idle cluster nothing is active but the query that counts.
    def idle():
        nb = client.get("/dashboard/active_backends", headers=headers).get_json()
        return nb["active_backends"]["nb"] == 0

    wait_for(idle, 10, step=0.5)


def test_databases_counts_a_new_database(client, headers, pg_cluster):
    before = client.get("/dashboard/databases", headers=headers).get_json()["databases"]
    pg_cluster.execute("CREATE DATABASE dashboard_counted")
    try:
        after = client.get("/dashboard/databases", headers=headers).get_json()["databases"]
    finally:
        pg_cluster.execute("DROP DATABASE dashboard_counted")
    assert after["databases"] == before["databases"] + 1


def test_databases_counts_commits_and_rollbacks(client, headers, pg_connections):
    before = client.get("/dashboard/databases", headers=headers).get_json()["databases"]
    conn = pg_connections(autocommit=False)
    for _ in range(5):
        conn.cursor().execute("SELECT 1")
        conn.rollback()
    conn.close()  # its statistics reach the server at once when it ends

    def counted():
        now = client.get("/dashboard/databases", headers=headers).get_json()["databases"]
        return now["total_rollback"] >= before["total_rollback"] + 5 and now

    after = wait_for(counted, 5)
    assert after["total_commit"] > before["total_commit"]


@pytest.fixture
def unprivileged(pg_cluster, settings, make_user):
    """An app connecting as a plain role (no superuser, no pg_monitor), with a
    database that role may not connect to."""
    pg_cluster.execute("CREATE ROLE dashboard_plain LOGIN PASSWORD 'plain-password'")
    pg_cluster.execute("CREATE DATABASE dashboard_locked")
    pg_cluster.execute("REVOKE CONNECT ON DATABASE dashboard_locked FROM PUBLIC")
    dsn = pg_cluster.dsn().replace("user=postgres", "user=dashboard_plain")
    dsn = re.sub(r"password=\S+", "password=plain-password", dsn)
    app = create_app({**settings, "pg_dsn": dsn})
    make_user()
    client = app.test_client()
    session = client.post("/login", json={"username": "alice", "password": "alice-password"})
    app.session_headers = {"X-Session": session.json["session"]}
    yield app
    close(app)
    pg_cluster.execute("DROP DATABASE dashboard_locked")
    pg_cluster.execute("DROP ROLE dashboard_plain")


def test_a_plain_role_gets_every_key_with_what_it_may_read(unprivileged, pg_cluster):
    body = unprivileged.test_client().get("/dashboard/live", headers=unprivileged.session_headers)
    assert body.status_code == 200
    assert_shape(body.get_json(), {**SAMPLE, **NOTIFICATIONS})
    # data_directory is hidden from it: the configured one is served instead.
    assert body.get_json()["pg_data"] == str(pg_cluster.data)
    # The locked database counts, though its size is not the role's to measure.
    every = pg_cluster.execute("SELECT count(*) FROM pg_database WHERE NOT datistemplate")
    assert body.get_json()["databases"]["databases"] == every[0][0]


# -- the CPU rate, without a sleep ----------------------------------------------------------------


def cpu_record(app, baseline="live"):
    """What the shared sample store holds for this host's CPU, for `baseline`."""
    with app.app_context():
        hostname = app.config["SENTINEL"]["hostname"]
        return redis.samples.get(samples.key(hostname, "host", "cpu", baseline))


def put_cpu_record(app, record, baseline="live"):
    with app.app_context():
        hostname = app.config["SENTINEL"]["hostname"]
        redis.samples.put(samples.key(hostname, "host", "cpu", baseline), record)


def test_live_never_sleeps(client, headers, monkeypatch):
    client.get("/dashboard/live", headers=headers)

    def no_sleeping(seconds):
        raise AssertionError(f"a request slept {seconds} s")

    monkeypatch.setattr(time, "sleep", no_sleeping)
    for _ in range(3):
        answer = client.get("/dashboard/live", headers=headers)
        assert answer.status_code == 200
        assert 99 <= sum(answer.get_json()["cpu"].values()) <= 101


def a_million_user_seconds_ago():
    # Whatever the host did since such a measure, the interval is all user time.
    times = host.cpu_times()
    return times, {"at": time.time() - 10, "times": {**times, "user": times["user"] - 1e6}}


def test_live_cpu_is_measured_since_the_previous_live_reading(app, client, headers):
    _, record = a_million_user_seconds_ago()
    put_cpu_record(app, record)
    cpu = client.get("/dashboard/live", headers=headers).get_json()["cpu"]
    assert cpu["user"] >= 99.9
    assert cpu["idle"] <= 0.1
    # The live reading is now the baseline of the next one.
    assert cpu_record(app)["usage"] == cpu


def test_the_collector_records_its_measure_and_usage(app, headers):
    times, record = a_million_user_seconds_ago()
    put_cpu_record(app, record, "collector")
    with app.app_context():
        data = dashboard.collect_and_store(postgres.pool, redis.samples, app.config["SENTINEL"])
    stored = cpu_record(app, "collector")
    assert data["cpu"]["user"] >= 99.9
    assert stored["usage"] == data["cpu"]
    assert stored["times"]["user"] >= times["user"]


def test_live_reads_never_shorten_the_collectors_interval(app, client, headers):
    _, record = a_million_user_seconds_ago()
    put_cpu_record(app, record, "collector")
    for _ in range(3):
        client.get("/dashboard/cpu", headers=headers)
        client.get("/dashboard/live", headers=headers)
    assert cpu_record(app, "collector") == record
    with app.app_context():
        data = dashboard.collect_and_store(postgres.pool, redis.samples, app.config["SENTINEL"])
    # Measured since the collector's own reading, not since the routes' last one.
    assert data["cpu"]["user"] >= 99.9


def test_a_measure_right_after_another_repeats_its_usage(app, client, headers):
    times = host.cpu_times()
    usage = {"user": 12.5, "system": 2.5, "idle": 85.0, "iowait": 0.0, "steal": 0.0}
    put_cpu_record(app, {"at": time.time(), "times": times, "usage": usage})
    assert client.get("/dashboard/cpu", headers=headers).get_json() == {"cpu": usage}


def test_live_reads_in_a_row_measure_since_the_previous_one(app, client, headers):
    _, record = a_million_user_seconds_ago()
    put_cpu_record(app, record)
    first = client.get("/dashboard/cpu", headers=headers).get_json()["cpu"]
    assert first["user"] >= 99.9
    wait_for(
        lambda: time.time() - cpu_record(app)["at"] > dashboard.MIN_CPU_INTERVAL,
        what="the first reading to be old enough to measure since",
    )
    # Measured since the first read, not since the planted record.
    second = client.get("/dashboard/cpu", headers=headers).get_json()["cpu"]
    assert second["user"] < 99.9
    assert 99 <= sum(second.values()) <= 101


def test_the_first_cpu_measure_is_the_average_since_boot(client, headers):
    cpu = client.get("/dashboard/cpu", headers=headers).get_json()["cpu"]
    assert 99 <= sum(cpu.values()) <= 101
    assert cpu["idle"] > 0


# -- history ------------------------------------------------------------------------------------


def test_history_is_oldest_first_bounded_and_without_notifications(settings, make_user):
    app = create_app({**settings, "dashboard_history": 3})
    try:
        taken = [collect(app)["timestamp"] for _ in range(5)]
        make_user()
        client = app.test_client()
        session = client.post("/login", json={"username": "alice", "password": "alice-password"})
        answer = client.get("/dashboard/history", headers={"X-Session": session.json["session"]})
        assert answer.status_code == 200
        assert answer.content_type == "application/json"
        history = answer.get_json()
        assert [sample["timestamp"] for sample in history] == taken[-3:]
        for sample in history:
            assert_shape(sample, SAMPLE)
        assert stored_count(app) == 3
    finally:
        close(app)


def test_history_survives_a_restart(app, settings, make_user):
    taken = [collect(app)["timestamp"] for _ in range(2)]
    close(app)
    state.database.close_all()

    restarted = create_app(settings)
    try:
        make_user()
        client = restarted.test_client()
        session = client.post("/login", json={"username": "alice", "password": "alice-password"})
        headers = {"X-Session": session.json["session"]}
        history = client.get("/dashboard/history", headers=headers).get_json()
        assert [sample["timestamp"] for sample in history] == taken
        assert client.get("/dashboard", headers=headers).get_json()["timestamp"] == taken[-1]
    finally:
        close(restarted)


def test_the_collector_runs_in_a_real_worker_and_keeps_its_history_bounded(
    app, sentinel_env, tmp_path
):
    env = {**sentinel_env, "SENTINEL_DASHBOARD_INTERVAL": "1", "SENTINEL_DASHBOARD_HISTORY": "3"}
    with open(tmp_path / "worker.log", "wb") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "sentinel", "worker"], env=env, stdout=log, stderr=log
        )
        try:
            wait_for(lambda: stored_count(app) == 3, 30, step=0.2)

            def oldest_id():
                with app.app_context():
                    first = DashboardSample.select().order_by(DashboardSample.id).first()
                state.database.close()
                return first.id

            first = oldest_id()
            wait_for(lambda: oldest_id() > first, 10, step=0.2)  # it goes on, trimming
            assert stored_count(app) <= 3
        finally:
            worker.send_signal(signal.SIGTERM)
            worker.wait(30)
    with app.app_context():
        assert "pg_version" in dashboard.last_sample()


# -- PostgreSQL stopped -------------------------------------------------------------------------


@pytest.fixture
def watching_own(own_cluster, settings, make_user):
    """An app watching the test's own cluster, and a session header for it."""
    app = create_app({**settings, "pg_dsn": own_cluster.dsn(), "pg_data": ""})
    make_user()
    client = app.test_client()
    session = client.post("/login", json={"username": "alice", "password": "alice-password"})
    app.session_headers = {"X-Session": session.json["session"]}
    yield app
    close(app)


def test_stopped_postgres_live_answers_with_the_host_keys_only(watching_own, own_cluster):
    client = watching_own.test_client()
    assert "pg_version" in client.get("/dashboard/live", headers=watching_own.session_headers).json
    own_cluster.stop()
    answer = client.get("/dashboard/live", headers=watching_own.session_headers)
    assert answer.status_code == 200
    assert_shape(answer.get_json(), {**HOST, **NOTIFICATIONS})


def test_stopped_postgres_routes_reading_it_now_are_503(watching_own, own_cluster):
    own_cluster.stop()
    client = watching_own.test_client()
    for route in READ_NOW_FROM_POSTGRES:
        answer = client.get(route, headers=watching_own.session_headers)
        assert answer.status_code == 503, route
        assert answer.get_json()["error"].startswith("PostgreSQL is unavailable:"), route


def test_stopped_postgres_dashboard_keeps_serving_the_last_sample(watching_own, own_cluster):
    collected = collect(watching_own)
    own_cluster.stop()
    body = watching_own.test_client().get("/dashboard", headers=watching_own.session_headers)
    assert body.status_code == 200
    assert body.get_json()["timestamp"] == collected["timestamp"]
    assert body.get_json()["pg_version"] == collected["pg_version"]


def test_stopped_postgres_the_collector_stores_host_samples_then_recovers(
    watching_own, own_cluster
):
    own_cluster.stop()
    down = collect(watching_own)
    with watching_own.app_context():
        assert_shape(dashboard.last_sample(), HOST)
    own_cluster.start()
    up = collect(watching_own)
    with watching_own.app_context():
        assert_shape(dashboard.last_sample(), {**SAMPLE, "pg_data": str})
    assert up["timestamp"] > down["timestamp"]


# -- the page's data ----------------------------------------------------------------------------


def signed_in(client, username="alice", password="alice-password"):
    """A test client signed in through the login form, as a browser is."""
    page = client.get("/ui/login").get_data(as_text=True)
    token = re.search(r'<meta name="csrf-token" content="([^"]+)"', page).group(1)
    answer = client.post(
        "/ui/login", data={"username": username, "password": password, "csrf_token": token}
    )
    assert answer.status_code == 302
    return client


def test_page_data_needs_a_signed_in_user(client):
    answer = client.get("/ui/dashboard/data", headers={"Accept": "application/json"})
    assert answer.status_code in (302, 401)


def test_page_data_gives_every_kept_sample_with_the_transaction_rate(app, client, make_user):
    for _ in range(3):
        collect(app)
    signed_in(client, *make_user())
    points = client.get("/ui/dashboard/data").get_json()["points"]
    with app.app_context():
        samples = [
            json.loads(row.data) for row in DashboardSample.select().order_by(DashboardSample.id)
        ]
    assert [point["time"] for point in points] == [sample["timestamp"] for sample in samples]
    assert points[0]["tps"] is None  # nothing before it to take a rate against
    for before, after, point in zip(samples, samples[1:], points[1:], strict=False):
        done = (
            after["databases"]["total_commit"]
            + after["databases"]["total_rollback"]
            - before["databases"]["total_commit"]
            - before["databases"]["total_rollback"]
        )
        elapsed = after["databases"]["timestamp"] - before["databases"]["timestamp"]
        assert point["tps"] == round(done / elapsed, 2)
    assert points[-1]["active_backends"] == samples[-1]["active_backends"]["nb"]
    assert points[-1]["hitratio"] == samples[-1]["hitratio"]


def test_page_data_since_gives_only_newer_samples_rated_against_the_one_before(
    app, client, make_user
):
    taken = [collect(app) for _ in range(3)]
    signed_in(client, *make_user())
    answer = client.get(f"/ui/dashboard/data?since={taken[1]['timestamp']}").get_json()
    assert [point["time"] for point in answer["points"]] == [taken[2]["timestamp"]]
    assert answer["points"][0]["tps"] is not None
    assert client.get(f"/ui/dashboard/data?since={taken[2]['timestamp']}").json["points"] == []


@pytest.mark.parametrize("since", ["yesterday", "nan", "inf", "-1", "1e300", ""])
def test_page_data_refuses_a_malformed_since(client, make_user, since):
    signed_in(client, *make_user())
    answer = client.get(f"/ui/dashboard/data?since={since}")
    assert answer.status_code == 406
    assert answer.get_json() == {"error": "Parameter 'since' is malformed."}


def test_page_data_of_a_sample_without_postgres_has_gaps_for_its_figures(watching_own, own_cluster):
    collect(watching_own)
    own_cluster.stop()
    collect(watching_own)
    client = signed_in(watching_own.test_client())
    up, down = client.get("/ui/dashboard/data").get_json()["points"]
    assert up["hitratio"] is not None and up["active_backends"] is not None
    assert (down["hitratio"], down["active_backends"], down["tps"]) == (None, None, None)
    assert down["cpu"] and down["memory"] and down["loadaverage"] is not None
