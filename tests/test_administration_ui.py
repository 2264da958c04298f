"""The Administration page in Chromium: reload and restart, confirmed, for real."""

import os
import re
import shutil

import pytest
from playwright.sync_api import expect

from sentinel.dev import sandbox

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def service(tmp_path_factory, redis_server):
    """Sentinel under gunicorn controlling a cluster of this module's own."""
    cluster, base = sandbox.throwaway_cluster("sentinel-admin-ui-")
    state_dir = tmp_path_factory.mktemp("admin-ui-state")
    env = {
        **os.environ,
        "SENTINEL_STATE_DIR": str(state_dir),
        "SENTINEL_PG_DSN": cluster.dsn(),
        "SENTINEL_PG_CTL": cluster.pg_ctl_command(),
        "SENTINEL_REDIS_URL": redis_server.url,
    }
    service = sandbox.Service(env, log=state_dir / "gunicorn.log").start()
    service.cluster = cluster
    yield service
    service.stop()
    cluster.stop("immediate")
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def signed_in(signed_in):
    """conftest's signed-in page, on the Administration page."""
    signed_in.goto("/ui/administration/")
    return signed_in


def postmaster_start(cluster):
    return cluster.execute("SELECT pg_postmaster_start_time()")[0][0]


def test_the_page_shows_the_running_instance(signed_in):
    expect(signed_in.locator("#instance-state")).to_contain_text("Running PostgreSQL 15.")
    expect(signed_in.locator("#uptime")).to_have_text(re.compile(r"^\d+ (s|min|h|d)"))
    expect(signed_in.locator("#pending-restart")).to_have_text("No setting waits for a restart.")


def test_restart_stands_apart_from_reload_and_looks_dangerous(signed_in):
    reload = signed_in.get_by_role("button", name="Reload configuration")
    restart = signed_in.get_by_role("button", name="Restart PostgreSQL")
    expect(restart).to_have_class(re.compile(r"\bdanger\b"))
    expect(reload).not_to_have_class(re.compile(r"\bdanger\b"))
    left, right = reload.bounding_box(), restart.bounding_box()
    apart = right["x"] - (left["x"] + left["width"])
    below = right["y"] - (left["y"] + left["height"])
    assert apart >= 16 or below >= 16, (left, right)


def test_restart_asks_for_confirmation_then_restarts(signed_in, service):
    cluster = service.cluster
    cluster.execute("ALTER SYSTEM SET max_locks_per_transaction = 128")
    cluster.execute("SELECT pg_reload_conf()")
    try:
        signed_in.reload()
        pending = signed_in.locator("#pending-restart")
        expect(pending).to_contain_text("max_locks_per_transaction")
        before = postmaster_start(cluster)
        signed_in.get_by_role("button", name="Restart PostgreSQL").click()
        dialog = signed_in.locator("#confirm")
        expect(dialog).to_be_visible()
        expect(dialog).to_contain_text("every session is disconnected")
        expect(dialog).to_contain_text("connected now")
        expect(dialog).to_contain_text("It has been up for")
        confirm = dialog.get_by_role("button", name="Restart PostgreSQL")
        expect(confirm).to_have_class(re.compile(r"\bdanger\b"))
        confirm.click()
        outcome = signed_in.locator("#outcome")
        expect(outcome).to_contain_text("PostgreSQL restarted in", timeout=60_000)
        expect(outcome).to_contain_text("up again since")
        expect(outcome).to_contain_text("no setting pending")
        expect(outcome.locator("time")).to_have_text(re.compile(r"^\d\d:\d\d:\d\d$"))
        assert postmaster_start(cluster) > before
        expect(signed_in.locator("#instance-state")).to_contain_text("Running")
        expect(pending).to_have_text("No setting waits for a restart.")
    finally:
        cluster.execute("ALTER SYSTEM RESET max_locks_per_transaction")


def test_cancelling_the_confirmation_does_nothing(signed_in, service):
    before = postmaster_start(service.cluster)
    signed_in.get_by_role("button", name="Restart PostgreSQL").click()
    signed_in.locator("#confirm").get_by_role("button", name="Cancel").click()
    expect(signed_in.locator("#confirm")).to_be_hidden()
    expect(signed_in.locator("#outcome")).to_have_text("")
    assert postmaster_start(service.cluster) == before


def test_reload_shows_its_outcome_and_is_recorded(signed_in):
    signed_in.get_by_role("button", name="Reload configuration").click()
    signed_in.locator("#confirm").get_by_role("button", name="Reload").click()
    expect(signed_in.locator("#outcome")).to_contain_text("Configuration reloaded in")
    expect(signed_in.locator("#outcome")).to_have_attribute("role", "status")
    signed_in.goto("/ui/")
    expect(signed_in.locator("#notifications tbody tr").first).to_contain_text("PostgreSQL reload")


def test_a_failed_action_shows_why(signed_in, service):
    service.cluster.stop()
    try:
        signed_in.get_by_role("button", name="Reload configuration").click()
        signed_in.locator("#confirm").get_by_role("button", name="Reload").click()
        expect(signed_in.locator("#outcome")).to_contain_text("Reload failed in")
        expect(signed_in.locator("#outcome")).to_have_attribute("role", "alert")
        expect(signed_in.locator("#instance-state")).to_contain_text("Not reachable")
    finally:
        service.cluster.start()
