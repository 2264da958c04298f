"""The Maintenance pages in Chromium: the drill-down with sizes and bloat, an
operation confirmed with its lock and blockers, the jobs page and a running
job's progress bar, a viewer's page."""

import os
import re
import signal
import subprocess
import sys
import uuid

import pytest
from playwright.sync_api import expect
from test_maintenance_jobs import slow_to_vacuum

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def maint_db(pg_cluster):
    name = f"mui_{uuid.uuid4().hex[:10]}"
    pg_cluster.execute(f'CREATE DATABASE "{name}"')
    conn = pg_cluster.connect(name)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(
            "CREATE TABLE bloated (id int PRIMARY KEY, v text) WITH (autovacuum_enabled = off)"
        )
        cur.execute("INSERT INTO bloated SELECT i, md5(i::text) FROM generate_series(1, 20000) i")
        cur.execute("DELETE FROM bloated WHERE id % 10 <> 0")
        cur.execute("ANALYZE bloated")
    conn.close()
    yield name
    pg_cluster.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
    )
    pg_cluster.execute(f'DROP DATABASE IF EXISTS "{name}"')


@pytest.fixture
def slow_db(pg_cluster):
    """A database of the test's own, whose table `slow` VACUUM scans for
    seconds (its sessions sleep at every page); (name, pages)."""
    name = f"mslow_{uuid.uuid4().hex[:10]}"
    pg_cluster.execute(f'CREATE DATABASE "{name}"')
    yield name, slow_to_vacuum(pg_cluster, name, "slow", pages=2000)
    pg_cluster.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
    )
    pg_cluster.execute(f'DROP DATABASE IF EXISTS "{name}"')


@pytest.fixture
def worker(service, tmp_path):
    log = open(tmp_path / "worker.log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [sys.executable, "-m", "sentinel", "worker"],
        env=service.env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    yield process
    process.terminate()
    try:
        process.wait(20)
    finally:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        log.close()


def test_the_drill_down_shows_sizes_and_bloat(signed_in, maint_db):
    page = signed_in
    page.goto("/ui/maintenance/")
    row = page.locator("#databases tbody tr", has_text=maint_db)
    expect(row).to_have_count(1)
    expect(row.locator("meter").first).to_be_visible()
    row.get_by_role("link", name=maint_db).click()
    page.locator("#schemas tbody tr", has_text="public").get_by_role("link").click()
    bloated = page.locator("#tables tbody tr", has_text="bloated")
    expect(bloated).to_contain_text("KiB")
    bloated.get_by_role("link", name="bloated").click()
    expect(page.locator("#table-facts")).to_contain_text("Estimated bloat")
    expect(page.locator("#indexes tbody tr", has_text="bloated_pkey")).to_have_count(1)


def test_an_operation_is_confirmed_with_its_lock_and_who_blocks_it(
    signed_in, maint_db, pg_connections
):
    holder = pg_connections(maint_db, autocommit=False)
    with holder.cursor() as cur:
        cur.execute("SELECT count(*) FROM bloated")
    page = signed_in
    page.goto(f"/ui/maintenance/?db={maint_db}&schema=public&table=bloated")
    page.locator("#mode-full").check()
    page.locator("#operations").get_by_role("button", name="VACUUM").click()
    dialog = page.locator("#confirm")
    expect(dialog).to_contain_text("AccessExclusiveLock")
    expect(dialog).to_contain_text("blocks every read and write")
    expect(dialog).to_contain_text(f"backend {holder.get_backend_pid()}")
    page.locator("#confirm-back").click()
    holder.rollback()


def test_a_scheduled_job_is_listed_and_canceled(signed_in, maint_db):
    page = signed_in
    page.goto(f"/ui/maintenance/?db={maint_db}&schema=public&table=bloated")
    page.locator("#when").fill("2099-01-01T10:00")
    page.locator("#operations").get_by_role("button", name="ANALYZE").click()
    page.locator("#confirm-ok").click()
    expect(page.locator("#outcome")).to_contain_text("asked (job ")
    page.goto("/ui/maintenance/jobs")
    row = page.locator("#jobs tbody tr", has_text="bloated")
    expect(row).to_contain_text("todo")
    row.get_by_role("button", name="Cancel").click()
    page.locator("#confirm-ok").click()
    expect(page.locator("#outcome")).to_contain_text("canceled")
    expect(row).to_contain_text("canceled")


def test_a_job_run_now_ends_done_on_the_jobs_page(signed_in, maint_db, worker):
    page = signed_in
    page.goto(f"/ui/maintenance/?db={maint_db}")
    page.locator("#operations").get_by_role("button", name="VACUUM").click()
    expect(page.locator("#confirm")).to_contain_text("each table in turn")
    page.locator("#confirm-ok").click()
    expect(page.locator("#outcome")).to_contain_text("asked (job ")
    page.goto("/ui/maintenance/jobs")
    row = page.locator("#jobs tbody tr", has_text=f"{maint_db} (whole database)").first
    expect(row).to_contain_text("done", timeout=30_000)


# slow_db after worker: its teardown ends the VACUUM before the worker is stopped.
def test_the_progress_bar_of_a_running_job_moves(signed_in, worker, slow_db):
    name, pages = slow_db
    page = signed_in
    page.goto(f"/ui/maintenance/?db={name}&schema=public&table=slow")
    page.locator("#operations").get_by_role("button", name="VACUUM").click()
    page.locator("#confirm-ok").click()
    expect(page.locator("#outcome")).to_contain_text("asked (job ")
    ident = re.search(r"\(job (\w+)\)", page.locator("#outcome").inner_text()).group(1)
    page.goto("/ui/maintenance/jobs")
    row = page.locator(f'#jobs tbody tr[data-key="{ident}"]')
    bar = row.locator("progress")
    expect(bar).to_have_attribute("max", str(pages))
    expect(row).to_contain_text("scanning heap")
    first = int(bar.get_attribute("value"))
    # The page reads the jobs again every 2 s and redraws the bar in place.
    page.wait_for_function(
        "([selector, first]) => document.querySelector(selector)?.value > first",
        arg=[f'#jobs tbody tr[data-key="{ident}"] progress', first],
    )
    assert first < int(bar.get_attribute("value")) < pages
    expect(row).to_contain_text("doing")


def test_a_viewer_sees_no_operation(page, service, ui_user_factory, sign_in, maint_db):
    sign_in(page, ui_user_factory(service, role="viewer"))
    page.goto(f"/ui/maintenance/?db={maint_db}&schema=public&table=bloated")
    expect(page.locator("#table-facts")).to_contain_text("Size")
    expect(page.locator("#operations")).to_have_count(0)
    expect(page.get_by_role("button", name="REINDEX")).to_have_count(0)
