"""The Activity page in Chromium: real backends listed, sorted, terminated after
confirmation, and a real chain of lock waits drawn as a tree."""

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


@pytest.fixture
def signed_in(page, ui_user, sign_in):
    sign_in(page, ui_user)
    return page


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

    header.click()
    expect(header).to_have_attribute("aria-sort", "ascending")
    shown = [int(text) for text in pids.all_inner_texts()]
    assert len(shown) >= 4 and shown == sorted(shown)

    header.click()
    expect(header).to_have_attribute("aria-sort", "descending")
    shown = [int(text) for text in pids.all_inner_texts()]
    assert shown == sorted(shown, reverse=True)


def test_terminate_asks_then_ends_the_backend(signed_in, backends, ui_user):
    pid = backends.sleeping().get_backend_pid()
    page = open_page(signed_in)
    row(page, "backends", pid).get_by_role("button", name="Terminate").click()
    dialog = page.locator("#confirm")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text(f"Terminate backend {pid}?")
    dialog.get_by_role("button", name="Confirm").click()
    expect(page.locator("#outcome")).to_have_text(f"Backend {pid} terminated.")
    expect(page.locator("#outcome")).to_have_attribute("role", "status")
    wait_for(lambda: not backends.alive(pid), what="the backend to end")
    expect(row(page, "backends", pid)).to_have_count(0)
    page.goto("/ui/")
    latest = page.locator("#notifications tbody tr").first
    expect(latest).to_contain_text(f"Backend {pid} terminated")
    expect(latest).to_contain_text(ui_user)


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
    page.locator("#confirm").get_by_role("button", name="Confirm").click()
    expect(page.locator("#outcome")).to_have_text(f"Backend {a.get_backend_pid()} terminated.")
    # B now has the table it waited for, and C still waits for B.
    new_root = page.locator(f"#locktree > ul > li[data-pid='{b.get_backend_pid()}']")
    expect(new_root.locator(f"li[data-pid='{c.get_backend_pid()}']")).to_have_count(1)
    expect(page.locator(f"#locktree li[data-pid='{a.get_backend_pid()}']")).to_have_count(0)
