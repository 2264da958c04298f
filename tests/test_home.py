"""The home page's health figures (GET /ui/health) against the real instance:
a real lock wait, rates from two readings, and PostgreSQL down."""

import re

import pytest
from test_activity import Backends

from sentinel import samples
from sentinel.core import health


@pytest.fixture
def settings(settings, request):
    """The usual settings, or with `indirect` "down", a stopped instance's."""
    if getattr(request, "param", None) == "down":
        cluster = request.getfixturevalue("own_cluster")
        cluster.stop()
        return {**settings, "pg_dsn": cluster.dsn(), "connect_timeout": 2}
    return settings


@pytest.fixture
def backends(pg_connections, pg_cluster):
    backends = Backends(pg_connections, pg_cluster)
    yield backends
    backends.close()


def signed_in(client, make_user):
    username, password = make_user("bob", "bob-password")
    page = client.get("/ui/login").get_data(as_text=True)
    token = re.search(r'<meta name="csrf-token" content="([^"]+)"', page).group(1)
    answer = client.post(
        "/ui/login", data={"username": username, "password": password, "csrf_token": token}
    )
    assert answer.status_code == 302


def test_a_lock_wait_counts_as_a_blocked_backend(client, make_user, backends):
    table = backends.table()
    holder = backends.open(autocommit=False)
    backends.execute(holder, f"LOCK TABLE {table}")
    waiter = backends.waiting(f"SELECT * FROM {table}")
    signed_in(client, make_user)
    figures = client.get("/ui/health").get_json()
    assert figures["up"] is True
    assert figures["blocked"] == {"count": 1, "status": "warning"}
    assert figures["longest_transaction"]["pid"] in (
        holder.get_backend_pid(),
        waiter.get_backend_pid(),
    )
    assert figures["longest_query"]["pid"] == waiter.get_backend_pid()
    assert figures["connections"]["used"] >= 3
    assert figures["connections"]["max"] > figures["connections"]["used"]


def test_rates_come_from_the_previous_reading(app, client, make_user, backends):
    signed_in(client, make_user)
    first = client.get("/ui/health").get_json()
    assert first["tps"] == {"value": None, "status": "unknown"}
    # The reading kept, as if taken two seconds earlier: no sleep needed.
    store = app.extensions["sentinel.samples"]
    with app.app_context():
        name = samples.key(
            app.extensions["sentinel.postgres"].identity("sentinel.test"), "home", "counters"
        )
    kept = store.get(name)
    store.put(name, {**kept, "at": kept["at"] - 2, "transactions": kept["transactions"] - 10})
    second = client.get("/ui/health").get_json()
    assert second["tps"]["status"] == "ok"
    assert second["tps"]["value"] >= 10 / 2.5
    assert second["wal_rate"]["value"] >= 0


@pytest.mark.parametrize("settings", ["down"], indirect=True)
def test_postgres_down_still_answers_and_says_so(client, make_user):
    signed_in(client, make_user)
    figures = client.get("/ui/health").get_json()
    assert figures["up"] is False
    assert figures["status"] == "critical"
    assert figures["reason"]
    assert set(figures["collectors"]) == {"dashboard", "monitoring", "status"}
    page = client.get("/ui/")
    assert page.status_code == 200
    assert "PostgreSQL is unavailable" in page.get_data(as_text=True)


@pytest.mark.parametrize(
    ("name", "value", "status"),
    [
        ("connections", 50.0, "ok"),
        ("connections", 80.0, "warning"),
        ("connections", 95.0, "critical"),
        ("longest_query", 30, "ok"),
        ("longest_query", 120, "warning"),
        ("longest_query", 600, "critical"),
        ("longest_transaction", 60, "ok"),
        ("longest_transaction", 600, "warning"),
        ("longest_transaction", 3600, "critical"),
        ("blocked", 0, "ok"),
        ("blocked", 1, "warning"),
        ("blocked", 5, "critical"),
        ("pending_restart", 0, "ok"),
        ("pending_restart", 3, "warning"),
        ("connections", None, "unknown"),
    ],
)
def test_thresholds_give_each_figure_its_status(name, value, status):
    assert health.level(name, value) == status


@pytest.mark.parametrize(
    ("ratio", "status"), [(99.5, "ok"), (92.0, "warning"), (80.0, "critical"), (None, "unknown")]
)
def test_a_low_cache_hit_ratio_is_a_warning_then_critical(ratio, status):
    assert health.hit_ratio_level(ratio) == status
