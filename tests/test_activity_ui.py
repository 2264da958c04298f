"""The Activity page in Chromium: real backends listed, sorted, terminated after
confirmation, and a real chain of lock waits drawn as a tree."""

import re
import uuid

import pytest
from playwright.sync_api import expect
from polling import wait_for
from test_activity import Backends, chain_of_three

pytestmark = pytest.mark.browser


@pytest.fixture
def backends(pg_connections, pg_cluster):
    backends = Backends(pg_connections, pg_cluster)
    yield backends
    backends.close()


def open_page(page):
    page.goto("/ui/activity/")
    expect(page.locator("#activity-status")).to_contain_text("Refreshed at")
    return page


def row(page, table, pid):
    return page.locator(f"#{table} tbody tr[data-pid='{pid}']")


def test_the_page_lists_a_sleeping_backend(signed_in, backends):
    pid = backends.sleeping().get_backend_pid()
    page = open_page(signed_in)
    expect(row(page, "backends", pid)).to_contain_text("SELECT pg_sleep(30)")
    expect(row(page, "backends", pid)).to_contain_text("active")


def test_clicking_a_header_sorts_the_rows(signed_in, backends):
    for _ in range(3):
        backends.sleeping()
    page = open_page(signed_in)
    header = page.locator("#backends th[data-key='pid']")
    pids = page.locator("#backends tbody tr td:first-child")
    expect(pids).not_to_have_count(0)

    # Numbers sort largest first, then the other way.
    header.click()
    expect(header).to_have_attribute("aria-sort", "descending")
    shown = [int(text) for text in pids.all_inner_texts()]
    assert len(shown) >= 4 and shown == sorted(shown, reverse=True)

    header.click()
    expect(header).to_have_attribute("aria-sort", "ascending")
    shown = [int(text) for text in pids.all_inner_texts()]
    assert shown == sorted(shown)


def test_terminate_asks_then_ends_the_backend(signed_in, backends, ui_admin):
    pid = backends.sleeping().get_backend_pid()
    page = open_page(signed_in)
    row(page, "backends", pid).get_by_role("button", name="Terminate").click()
    dialog = page.locator("#confirm")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text(f"Terminate backend {pid}?")
    # It says which backend and what it is doing.
    expect(dialog).to_contain_text(f"backend {pid}, postgres@postgres, running a query for")
    dialog.get_by_role("button", name="Terminate").click()
    expect(page.locator("#outcome")).to_contain_text(f"Backend {pid} terminated (was postgres@")
    expect(page.locator("#outcome time")).to_have_text(re.compile(r"^\d\d:\d\d:\d\d$"))
    expect(page.locator("#outcome")).to_have_attribute("role", "status")
    wait_for(lambda: not backends.alive(pid), what="the backend to end")
    expect(row(page, "backends", pid)).to_have_count(0)
    page.goto("/ui/")
    latest = page.locator("#notifications tbody tr").first
    expect(latest).to_contain_text(f"Backend {pid} terminated")
    expect(latest).to_contain_text(ui_admin[0])


def test_backing_out_of_the_dialog_keeps_the_backend(signed_in, backends):
    conn = backends.sleeping()
    pid = conn.get_backend_pid()
    page = open_page(signed_in)
    row(page, "backends", pid).get_by_role("button", name="Terminate").click()
    page.locator("#confirm").get_by_role("button", name="Back").click()
    expect(page.locator("#confirm")).to_be_hidden()
    expect(page.locator("#outcome")).to_have_text("")
    assert backends.is_running(conn, "pg_sleep")


def test_the_lock_tree_shows_a_real_chain(signed_in, backends):
    (a, b, c), (first, second) = chain_of_three(backends)
    page = open_page(signed_in)
    root = page.locator(f"#locktree > ul > li[data-pid='{a.get_backend_pid()}']")
    expect(root).to_contain_text(f"AccessExclusiveLock on {first}")
    middle = root.locator(f":scope > ul > li[data-pid='{b.get_backend_pid()}']")
    expect(middle).to_contain_text(f"AccessExclusiveLock on {second}")
    expect(middle.locator(f":scope > ul > li[data-pid='{c.get_backend_pid()}']")).to_contain_text(
        f"SELECT * FROM {second}"
    )
    expect(row(page, "waiting", c.get_backend_pid())).to_contain_text(second)
    expect(row(page, "blocking", a.get_backend_pid())).to_contain_text(first)


def test_terminating_a_tree_root_frees_its_chain(signed_in, backends):
    (a, b, c), _ = chain_of_three(backends)
    page = open_page(signed_in)
    root = page.locator(f"#locktree > ul > li[data-pid='{a.get_backend_pid()}']")
    root.locator(":scope > .node").get_by_role("button", name="Terminate").click()
    page.locator("#confirm").get_by_role("button", name="Terminate").click()
    expect(page.locator("#outcome")).to_contain_text(f"Backend {a.get_backend_pid()} terminated")
    # B now has the table it waited for, and C still waits for B.
    new_root = page.locator(f"#locktree > ul > li[data-pid='{b.get_backend_pid()}']")
    expect(new_root.locator(f"li[data-pid='{c.get_backend_pid()}']")).to_have_count(1)
    expect(page.locator(f"#locktree li[data-pid='{a.get_backend_pid()}']")).to_have_count(0)


def test_cancel_is_offered_only_where_a_query_runs(signed_in, backends):
    active = backends.sleeping().get_backend_pid()
    idle = backends.open().get_backend_pid()
    page = open_page(signed_in)
    expect(row(page, "backends", active).get_by_role("button", name="Cancel")).to_have_count(1)
    expect(row(page, "backends", idle).get_by_role("button", name="Terminate")).to_have_count(1)
    expect(row(page, "backends", idle).get_by_role("button", name="Cancel")).to_have_count(0)
    expect(row(page, "backends", idle)).to_contain_text("idle")


def test_empty_lists_say_what_is_not_there(signed_in):
    page = open_page(signed_in)
    expect(page.locator("#waiting tbody")).to_have_text("No backend is waiting for a lock.")
    expect(page.locator("#blocking tbody")).to_have_text("No backend is blocking another.")
    expect(page.locator("#locktree")).to_have_text("No backend is waiting for another.")


def test_rates_and_waits_read_as_words(signed_in, backends):
    holder, waiter = lock_wait(backends)
    page = open_page(signed_in)
    waiting = row(page, "backends", waiter)
    expect(waiting.locator(".badge", has_text="lock")).to_have_count(1)
    expect(waiting.locator("td.io")).to_contain_text(re.compile(r"R \d+(\.\d+)? (B|KiB|MiB|GiB)/s"))
    holding = row(page, "backends", holder)
    expect(holding.locator(".badge", has_text="idle in transaction")).to_be_visible()


def lock_wait(backends):
    """A backend holding a lock in an open transaction, and one waiting for it: their pids."""
    table = backends.table()
    holder = backends.open(autocommit=False)
    backends.execute(holder, f"LOCK TABLE {table}")
    waiter = backends.waiting(f"SELECT * FROM {table}")
    return holder.get_backend_pid(), waiter.get_backend_pid()


def test_lock_tables_fit_a_laptop_screen(browser, service, ui_user, sign_in, backends):
    holder, waiter = lock_wait(backends)
    context = browser.new_context(base_url=service.url, viewport={"width": 1366, "height": 900})
    try:
        page = context.new_page()
        sign_in(page, ui_user)
        open_page(page)
        expect(row(page, "waiting", waiter)).to_be_visible()
        expect(row(page, "blocking", holder)).to_be_visible()
        for table in ("backends", "waiting", "blocking"):
            box = page.locator(f"#{table}").locator("xpath=..")
            assert box.evaluate("el => el.scrollWidth <= el.clientWidth"), table
            # Duration and State in view, and the query shown past 60 characters.
            for header in ("Duration", "State"):
                assert page.locator(f"#{table} th", has_text=header).is_visible()
            pid = holder if table == "blocking" else waiter
            query = row(page, table, pid).locator("td.long code")
            characters = query.evaluate(
                """el => el.clientWidth / (() => { const c = document.createElement("canvas")
                   .getContext("2d"); c.font = getComputedStyle(el).font;
                   return c.measureText("x").width; })()"""
            )
            assert characters > 60, (table, characters)
    finally:
        context.close()


def test_a_long_query_shows_whole_on_click_and_stays_so(signed_in, backends):
    text = "SELECT pg_sleep(30) /* " + "a comment long enough to be cut " * 8 + "*/"
    conn = backends.start(text, conn=backends.open())
    wait_for(lambda: backends.is_running(conn, "pg_sleep"), what="the long query to run")
    page = open_page(signed_in)
    cell = row(page, "backends", conn.get_backend_pid()).locator("td.long")
    code = cell.locator("code")
    expect(code).to_have_text(text)  # all of it is there, to copy
    assert code.evaluate("el => el.scrollWidth > el.clientWidth")  # but cut to one line
    code.click()
    expect(cell).to_have_class(re.compile("expanded"))
    assert code.evaluate("el => el.scrollWidth <= el.clientWidth")
    assert code.evaluate("el => getComputedStyle(el).fontFamily").lower().find("mono") >= 0
    # A refresh redraws the rows and keeps it whole.
    status = page.locator("#activity-status")
    before = status.inner_text()
    expect(status).not_to_have_text(before, timeout=10_000)
    expect(cell).to_have_class(re.compile("expanded"))


@pytest.fixture
def other_database(pg_cluster):
    name = f"activity_ui_{uuid.uuid4().hex[:8]}"
    pg_cluster.execute(f'CREATE DATABASE "{name}"')
    yield name
    pg_cluster.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_the_filters_narrow_the_rows(signed_in, backends, other_database):
    here = backends.sleeping().get_backend_pid()
    there = backends.sleeping(dbname=other_database).get_backend_pid()
    page = open_page(signed_in)
    expect(row(page, "backends", there)).to_be_visible()
    page.get_by_label("Database of Client backends").select_option(other_database)
    expect(row(page, "backends", there)).to_be_visible()
    expect(row(page, "backends", here)).to_have_count(0)
    expect(page.locator("#backends-count")).to_contain_text(" of ")
    page.get_by_label("Database of Client backends").select_option("")
    page.get_by_label("Filter Client backends").fill(str(here))
    expect(row(page, "backends", here)).to_be_visible()
    expect(row(page, "backends", there)).to_have_count(0)
    page.get_by_label("Filter Client backends").fill("no-such-thing-anywhere")
    expect(page.locator("#backends tbody")).to_contain_text("No backend matches the filter")


def test_pausing_stops_the_refresh(page, ui_user, sign_in):
    sign_in(page, ui_user)
    page.clock.install()  # the page's timers run when the test says, not by waiting
    asked = []
    page.on("request", lambda request: "/ui/activity/data" in request.url and asked.append(1))
    open_page(page)
    page.locator("#activity-refresh").get_by_role("button", name="Pause").click()
    status = page.locator("#activity-status")
    expect(status).to_contain_text("Paused; last refreshed at")
    before = len(asked)
    page.clock.run_for(30_000)  # ten refresh intervals
    assert len(asked) == before
    page.locator("#activity-refresh").get_by_role("button", name="Resume").click()
    expect(status).to_contain_text("Refreshed at")
    assert len(asked) == before + 1
    page.clock.run_for(3_500)
    expect(status).to_contain_text("Refreshed at")
    assert len(asked) >= before + 2


HIDE = """(hidden) => {
  Object.defineProperty(document, "hidden", {value: hidden, configurable: true});
  document.dispatchEvent(new Event("visibilitychange"));
}"""


def test_a_hidden_tab_stops_polling_and_refreshes_when_shown(page, ui_user, sign_in):
    sign_in(page, ui_user)
    page.clock.install()
    asked = []
    page.on("request", lambda request: "/ui/activity/data" in request.url and asked.append(1))
    open_page(page)
    page.evaluate(HIDE, True)
    before = len(asked)
    page.clock.run_for(30_000)
    assert len(asked) == before
    with page.expect_request("**/ui/activity/data"):
        page.evaluate(HIDE, False)
    expect(page.locator("#activity-status")).to_contain_text("Refreshed at")
