"""The home page in Chromium: the instance's health at a glance with a real
blocked backend, live rates, and PostgreSQL down."""

import os
import re
import shutil

import pytest
from conftest import watch_csp_violations
from playwright.sync_api import expect
from test_activity import Backends

from sentinel.dev import sandbox

pytestmark = pytest.mark.browser


@pytest.fixture
def backends(pg_connections, pg_cluster):
    backends = Backends(pg_connections, pg_cluster)
    yield backends
    backends.close()


def tile(page, name):
    return page.locator(f"#health-{name}")


def test_a_blocked_backend_shows_in_its_status_colour(page, ui_user, sign_in, backends):
    table = backends.table()
    holder = backends.open(autocommit=False)
    backends.execute(holder, f"LOCK TABLE {table}")
    backends.waiting(f"SELECT * FROM {table}")
    sign_in(page, ui_user)
    blocked = tile(page, "blocked")
    expect(blocked.locator(".value")).to_have_text("1")
    expect(blocked).to_have_class(re.compile(r"\bstatus-warning\b"))
    expect(blocked).to_have_attribute("href", "/ui/activity/#waiting-title")
    expect(page.locator("#health-summary")).to_contain_text("Blocked backends")
    expect(tile(page, "state").locator(".value")).to_have_text("Up")
    expect(tile(page, "state")).to_have_class(re.compile(r"\bstatus-ok\b"))
    expect(tile(page, "connections").locator(".value")).to_have_text(re.compile(r"^\d+ / \d+$"))
    expect(tile(page, "longest_transaction")).to_contain_text(
        f"backend {holder.get_backend_pid()}, idle in transaction"
    )
    # The figures follow the instance: the lock wait ends, and the tile says so.
    holder.rollback()
    expect(blocked.locator(".value")).to_have_text("0", timeout=15_000)
    expect(blocked).to_have_class(re.compile(r"\bstatus-ok\b"))


def test_rates_are_measured_between_two_readings(page, ui_user, sign_in):
    # The first reading of this service may be the page's own: the next
    # refresh measures against it.
    sign_in(page, ui_user)
    expect(tile(page, "tps").locator(".value")).to_have_text(
        re.compile(r"^\d+\.\d/s$"), timeout=15_000
    )
    expect(tile(page, "wal_rate").locator(".value")).to_have_text(
        re.compile(r"^\d+(\.\d+)? (B|KiB|MiB|GiB)/s$")
    )
    expect(page.locator("#home-status")).to_contain_text("Refreshed at")


@pytest.fixture
def down_service(tmp_path_factory, redis_server):
    """Sentinel watching an instance of its own, stopped."""
    cluster, base = sandbox.throwaway_cluster("sentinel-home-ui-")
    state_dir = tmp_path_factory.mktemp("home-ui-state")
    env = {
        **os.environ,
        "SENTINEL_STATE_DIR": str(state_dir),
        "SENTINEL_PG_DSN": cluster.dsn(),
        "SENTINEL_REDIS_URL": redis_server.url,
        "SENTINEL_HOSTNAME": "down.test",
        "SENTINEL_CONNECT_TIMEOUT": "2",
    }
    service = sandbox.Service(env, log=state_dir / "gunicorn.log").start()
    cluster.stop()
    yield service
    service.stop()
    shutil.rmtree(base, ignore_errors=True)


def test_with_postgres_down_the_page_renders_and_says_so(
    browser, down_service, ui_user_factory, sign_in
):
    context = browser.new_context(base_url=down_service.url)
    violations = watch_csp_violations(context)
    try:
        page = context.new_page()
        sign_in(page, ui_user_factory(down_service))
        expect(page.get_by_role("heading", level=1)).to_have_text("down.test")
        expect(page.locator("#health-alert")).to_contain_text("PostgreSQL is unavailable")
        expect(tile(page, "state").locator(".value")).to_have_text("Down")
        expect(tile(page, "state")).to_have_class(re.compile(r"\bstatus-critical\b"))
        expect(tile(page, "connections").locator(".value")).to_have_text("—")
        expect(tile(page, "connections")).to_have_class(re.compile(r"\bstatus-unknown\b"))
    finally:
        context.close()
    assert not violations, violations
