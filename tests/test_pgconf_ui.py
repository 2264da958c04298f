"""The Configuration page in Chromium: settings by category, searched, edited
in place, refused with the server's reason; restart and broken-file banners;
the history and its revert."""

import os
import re
import shutil

import pytest
from conftest import create_ui_user
from playwright.sync_api import expect

from sentinel.dev import sandbox
from tests.polling import wait_for

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def service(tmp_path_factory, redis_server):
    """Sentinel under gunicorn watching a cluster of this module's own: its
    tests leave settings pending a restart and break postgresql.conf."""
    cluster, base = sandbox.throwaway_cluster("sentinel-pgconf-ui-")
    state_dir = tmp_path_factory.mktemp("pgconf-ui-state")
    env = {
        **os.environ,
        "SENTINEL_STATE_DIR": str(state_dir),
        "SENTINEL_PG_DSN": cluster.dsn(),
        "SENTINEL_REDIS_URL": redis_server.url,
    }
    service = sandbox.Service(env, log=state_dir / "gunicorn.log").start()
    service.cluster = cluster
    yield service
    service.stop()
    cluster.stop("immediate")
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def cluster(service):
    """The module's cluster, its settings and postgresql.conf put back after the test."""
    cluster = service.cluster
    conf = cluster.data / "postgresql.conf"
    original = conf.read_text()
    yield cluster
    conf.write_text(original)
    for name in ("work_mem", "shared_buffers"):
        cluster.execute(f"ALTER SYSTEM RESET {name}")
    cluster.execute("SELECT pg_reload_conf()")


def open_page(page, sign_in, username):
    sign_in(page, username)
    page.goto("/ui/pgconf/")
    expect(page.locator("#settings tbody tr[data-key='work_mem']")).to_be_visible()
    return page


@pytest.fixture(scope="module")
def admin(service):
    """One admin for the module's tests (making a user takes a second or two)."""
    return create_ui_user(service)


@pytest.fixture
def admin_page(page, admin, sign_in, cluster):
    return open_page(page, sign_in, admin)


def setting_row(page, name):
    return page.locator(f"#settings tbody tr[data-key='{name}']")


def test_the_page_lists_settings_by_category_with_a_search(admin_page):
    page = admin_page
    expect(page.get_by_role("link", name="Configuration")).to_have_attribute("aria-current", "page")
    row = setting_row(page, "work_mem")
    expect(row).to_contain_text("Sets the maximum memory to be used for query workspaces.")
    expect(row).to_contain_text("4MB")
    expect(row).to_contain_text("64.0 KiB to 2.00 TiB (unit kB)")
    page.get_by_label("Category of Settings").select_option("Write-Ahead Log / Settings")
    expect(row).to_have_count(0)
    expect(setting_row(page, "wal_level")).to_contain_text("minimal, replica, logical")
    page.get_by_label("Category of Settings").select_option("")
    page.get_by_label("Filter Settings").fill("query workspaces")
    expect(page.locator("#settings tbody tr")).to_have_count(1)
    expect(page.locator("#settings-count")).to_contain_text("(1 of ")
    # Where a value comes from: the file and its line.
    page.get_by_label("Filter Settings").fill("max_connections")
    source = re.compile(r"postgresql\.conf:\d+")
    expect(setting_row(page, "max_connections")).to_contain_text(source)


def test_an_admin_changes_a_value_in_place(admin_page, cluster):
    page = admin_page
    row = setting_row(page, "work_mem")
    row.get_by_label("New value of work_mem").fill("8MB")
    row.get_by_role("button", name="Save").click()
    expect(row.locator(".setting-message")).to_contain_text("work_mem: 4MB → 8MB, in effect now")
    expect(row.locator("td.value > code")).to_have_text("8MB")
    expect(page.locator("#outcome")).to_contain_text("work_mem: 4MB → 8MB")
    first = page.locator("#history tbody tr").first
    expect(first).to_contain_text("work_mem")
    expect(first).to_contain_text("applied")
    wait_for(lambda: cluster.execute("SHOW work_mem")[0][0] == "8MB", what="the reload")


def test_a_refused_value_says_why_beside_the_setting(admin_page, cluster):
    page = admin_page
    row = setting_row(page, "work_mem")
    row.get_by_label("New value of work_mem").fill("10kB")
    row.get_by_role("button", name="Save").click()
    message = row.get_by_role("alert")
    expect(message).to_have_text("work_mem: 10kB is below the minimum 64kB")
    # What was typed stays, to be corrected.
    expect(row.get_by_label("New value of work_mem")).to_have_value("10kB")
    assert cluster.execute("SHOW work_mem")[0][0] == "4MB"


def test_a_viewer_sees_values_read_only(page, service, ui_user_factory, sign_in, cluster):
    open_page(page, sign_in, ui_user_factory(service, "viewer"))
    expect(setting_row(page, "work_mem")).to_contain_text("4MB")
    expect(page.locator("#settings form")).to_have_count(0)
    expect(page.get_by_role("columnheader", name="Actions")).to_have_count(0)
    expect(page.get_by_text("changing settings needs the admin role")).to_be_visible()


def test_a_pending_restart_shows_a_banner_and_the_waiting_value(admin_page, cluster):
    page = admin_page
    cluster.execute("ALTER SYSTEM SET shared_buffers = '256MB'")
    cluster.execute("SELECT pg_reload_conf()")
    wait_for(
        lambda: cluster.execute(
            "SELECT pending_restart FROM pg_settings WHERE name = 'shared_buffers'"
        )[0][0],
        what="the pending restart",
    )
    page.reload()
    banner = page.locator("#restart-banner")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text("takes effect at the next restart of PostgreSQL: shared_buffers")
    row = setting_row(page, "shared_buffers")
    expect(row).to_contain_text("pending restart 256MB at the next restart")
    expect(page.locator("#file-errors")).to_be_hidden()


def test_a_broken_configuration_file_is_shown_prominently(admin_page, cluster):
    page = admin_page
    expect(page.locator("#file-errors")).to_be_hidden()
    with open(cluster.data / "postgresql.conf", "a") as conf:
        conf.write("work_mem = 'lots'\n")
    cluster.execute("SELECT pg_reload_conf()")
    page.reload()
    errors = page.locator("#file-errors")
    expect(errors).to_be_visible()
    expect(errors).to_have_attribute("role", "alert")
    expect(errors).to_contain_text("work_mem = 'lots'")
    expect(errors).to_contain_text("setting could not be applied ('lots' is not a number)")


def test_a_change_is_reverted_from_the_history(admin_page, cluster):
    page = admin_page
    row = setting_row(page, "work_mem")
    row.get_by_label("New value of work_mem").fill("16MB")
    row.get_by_role("button", name="Save").click()
    expect(row.locator("td.value > code")).to_have_text("16MB")
    page.locator("#history tbody tr").first.get_by_role("button", name="Revert").click()
    dialog = page.locator("#confirm")
    expect(dialog).to_contain_text("work_mem goes back from 16MB to 4MB")
    dialog.get_by_role("button", name="Revert").click()
    expect(page.locator("#outcome")).to_contain_text("Reverted. work_mem: 16MB → default (reset)")
    expect(setting_row(page, "work_mem").locator("td.value > code")).to_have_text("4MB")
    latest = page.locator("#history tbody tr").first
    expect(latest).to_contain_text("16MB")
    expect(latest).to_contain_text("default (reset)")
