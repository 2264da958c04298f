"""The Dashboard page in Chromium: the charts of the collected samples, and a
sample collected while the page is open appearing without a reload."""

import pytest
from playwright.sync_api import expect

from sentinel import create_app, state
from sentinel.extensions import postgres, redis
from sentinel.plugins.dashboard import dashboard
from sentinel.state import DashboardSample

pytestmark = pytest.mark.browser

CHARTS = ("cpu", "memory", "loadaverage", "tps", "hitratio", "active_backends")


@pytest.fixture
def collect(service):
    """Run the collector job's code in this process, on the service's state
    (the service has no worker); the history starts empty."""
    env = service.env
    app = create_app(
        {
            "state_dir": env["SENTINEL_STATE_DIR"],
            "pg_dsn": env["SENTINEL_PG_DSN"],
            "pg_data": env["SENTINEL_PG_DATA"],
            "redis_url": env["SENTINEL_REDIS_URL"],
            "hostname": env["SENTINEL_HOSTNAME"],
        }
    )
    with app.app_context():
        DashboardSample.delete().execute()

    def collect():
        with app.app_context():
            return dashboard.collect_and_store(postgres.pool, redis.samples, app.config["SENTINEL"])

    yield collect
    app.extensions["sentinel.postgres"].close()
    app.extensions["sentinel.redis"].close()
    state.database.close_all()


@pytest.fixture
def open_dashboard(page, ui_user, sign_in):
    def open_dashboard():
        sign_in(page, ui_user)
        page.goto("/ui/dashboard/")
        return page

    return open_dashboard


def test_without_samples_the_page_asks_whether_the_worker_runs(collect, open_dashboard):
    page = open_dashboard()
    expect(page.locator("#no-samples")).to_be_visible()
    expect(page.locator("#no-samples")).to_contain_text("The collector has not run yet")
    expect(page.locator("#no-samples")).to_contain_text("is the worker running?")


def test_the_page_draws_six_charts_from_the_history(collect, open_dashboard):
    for _ in range(3):
        collect()
    page = open_dashboard()
    expect(page.locator("#charts")).to_have_attribute("data-points", "3")
    for chart in CHARTS:
        expect(page.locator(f"#chart-{chart} .uplot")).to_have_count(1)
        expect(page.locator(f"#chart-{chart} canvas")).to_be_visible()
    expect(page.locator("#no-samples")).to_be_hidden()


def test_the_page_shows_the_headline_numbers(collect, open_dashboard):
    collect()
    page = open_dashboard()
    headline = page.locator("#headline")
    expect(headline).to_contain_text("PostgreSQL 15.")
    expect(headline.locator("tr", has_text="max_connections")).to_contain_text("300")
    expect(headline.locator("tr", has_text="Databases")).to_contain_text("1 (")
    expect(headline.locator("tr", has_text="Up for")).not_to_be_empty()


def test_a_new_sample_appears_without_a_reload(collect, open_dashboard):
    collect()
    page = open_dashboard()
    expect(page.locator("#charts")).to_have_attribute("data-points", "1")
    first_label = page.locator("#last-sample").get_attribute("data-time")
    page.evaluate("window.stillTheSamePage = true")

    newer = collect()
    # The page polls every dashboard_interval (2 s).
    expect(page.locator("#charts")).to_have_attribute("data-points", "2", timeout=10_000)
    expect(page.locator("#last-sample")).to_have_attribute("data-time", str(newer["timestamp"]))
    assert page.locator("#last-sample").get_attribute("data-time") != first_label
    assert page.evaluate("window.stillTheSamePage") is True


def test_the_first_sample_hides_the_notice_without_a_reload(collect, open_dashboard):
    page = open_dashboard()
    expect(page.locator("#no-samples")).to_be_visible()
    collect()
    expect(page.locator("#no-samples")).to_be_hidden(timeout=10_000)
    expect(page.locator("#charts")).to_have_attribute("data-points", "1")
