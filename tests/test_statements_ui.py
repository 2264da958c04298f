"""The Statements page in Chromium: the statements of a window of the history
from real snapshots, sorted, filtered by database, a query shown whole, and
"since the last reset" read live."""

import uuid

import pytest
from conftest import app_of
from playwright.sync_api import expect

from sentinel.extensions import postgres
from sentinel.plugins.statements import statements
from sentinel.plugins.statements.models import StatementSnapshot

pytestmark = pytest.mark.browser


def run(conn, sql, times=1):
    with conn.cursor() as cursor:
        for _ in range(times):
            cursor.execute(sql)


def marker(conn):
    """(name, a statement reading a temporary table of that name)."""
    name = f"marker_{uuid.uuid4().hex[:10]}"
    run(conn, f"CREATE TEMPORARY TABLE {name} (i int)")
    return name, f"SELECT count(*) FROM {name}"


@pytest.fixture
def snapshot(service, pg_cluster):
    """snapshot() takes one as the service's worker would, on its state, of
    a view holding only what the test runs (earlier tests' statements reset)."""
    pg_cluster.execute("SELECT pg_stat_statements_reset()")
    with app_of(service) as app:
        with app.app_context():
            StatementSnapshot.delete().execute()

        def take():
            with app.app_context():
                statements.collect_and_store(postgres.pool, app.config["SENTINEL"])

        yield take


def row_of(page, name):
    return page.locator("#statements-table tbody tr", has_text=f"FROM {name}")


def test_the_page_lists_what_ran_in_the_window(snapshot, signed_in, pg_connections):
    conn = pg_connections()
    name, sql = marker(conn)
    snapshot()
    run(conn, sql, times=7)
    snapshot()
    signed_in.goto("/ui/statements/")
    row = row_of(signed_in, name)
    expect(row).to_have_count(1)
    cells = row.locator("td")
    expect(cells.nth(0)).to_have_text("postgres")
    expect(cells.nth(2)).to_have_text("7")
    expect(signed_in.locator("#window-status")).to_contain_text("2 snapshots in this window")
    # A statement that did not run in the window is not there.
    quiet, _ = marker(conn)
    expect(row_of(signed_in, quiet)).to_have_count(0)


def test_the_table_sorts_by_calls_and_filters_by_database(snapshot, signed_in, pg_connections):
    conn, other = pg_connections(), pg_connections("template1")
    (busy, busy_sql), (rare, rare_sql) = marker(conn), marker(other)
    snapshot()
    run(conn, busy_sql, times=9)
    run(other, rare_sql, times=2)
    snapshot()
    signed_in.goto("/ui/statements/")
    expect(row_of(signed_in, busy)).to_have_count(1)
    signed_in.locator("#statements-table th[data-key='calls']").click()
    first = signed_in.locator("#statements-table tbody tr").first
    expect(first).to_contain_text(busy)
    signed_in.get_by_label("Database of Statements").select_option("template1")
    expect(row_of(signed_in, busy)).to_have_count(0)
    expect(row_of(signed_in, rare)).to_have_count(1)
    expect(row_of(signed_in, rare).locator("td").nth(2)).to_have_text("2")


def test_a_query_is_shown_whole_on_click(snapshot, signed_in, pg_connections):
    conn = pg_connections()
    name, _ = marker(conn)
    long_query = f"SELECT count(*) FROM {name} WHERE i > 0" + " AND i < 100" * 20
    snapshot()
    run(conn, long_query)
    snapshot()
    signed_in.goto("/ui/statements/")
    cell = row_of(signed_in, name).locator("td.long")
    expect(cell).not_to_have_class("long expanded")
    cell.locator("code").click()
    expect(cell).to_have_class("long expanded")
    expect(cell).to_contain_text("AND i < $21")


def test_since_the_last_reset_reads_the_counters_now(snapshot, signed_in, pg_connections):
    conn = pg_connections()
    name, sql = marker(conn)
    run(conn, sql, times=4)  # no snapshot at all: the history has none of it
    signed_in.goto("/ui/statements/")
    expect(signed_in.locator("#statements-table tbody tr.empty")).to_be_visible()
    signed_in.get_by_label("Window").select_option("0")
    expect(row_of(signed_in, name).locator("td").nth(2)).to_have_text("4")
    expect(signed_in.locator("#window-status")).to_contain_text("since pg_stat_statements")
    assert "range=0" in signed_in.url


def test_an_empty_window_says_why(snapshot, signed_in):
    signed_in.goto("/ui/statements/?range=3600")
    expect(signed_in.locator("#statements-table tbody tr.empty")).to_contain_text(
        "the collector has not taken two snapshots yet"
    )
    expect(signed_in.locator("#window-status")).to_have_text("No snapshot in this window yet.")
