"""The Dashboard page in Chromium: the charts of the collected samples, a
sample collected while the page is open appearing without a reload, and the
chart conventions (docs/ui-charts.md) on real samples."""

import datetime
import json
import re

import pytest
from conftest import app_of, watch_csp_violations
from playwright.sync_api import expect

from sentinel.extensions import postgres, redis
from sentinel.plugins.dashboard import dashboard
from sentinel.state import DashboardSample

pytestmark = pytest.mark.browser

CHARTS = ("cpu", "memory", "loadaverage", "tps", "hitratio", "active_backends")


@pytest.fixture
def collect(service):
    """Run the collector job's code in this process, on the service's state
    (the service has no worker); the history starts empty."""
    with app_of(service) as app:
        with app.app_context():
            DashboardSample.delete().execute()

        def collect():
            with app.app_context():
                settings = app.config["SENTINEL"]
                return dashboard.collect_and_store(postgres.pool, redis.samples, settings)

        collect.app = app
        yield collect


@pytest.fixture
def open_dashboard(signed_in):
    def open_dashboard():
        signed_in.goto("/ui/dashboard/")
        return signed_in

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


TIME_TICK = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?(\n[01][0-9]-[0-3][0-9])?")


def legend_values(page, chart):
    """{series label: legend text} of a chart, as the page shows it."""
    rows = page.locator(f"#chart-{chart} .u-legend .u-series")
    return {
        row.locator("th").inner_text().strip(): row.locator("td").inner_text().strip()
        for row in rows.all()
    }


def ticks(page, chart, axis):
    return json.loads(page.locator(f"#chart-{chart}").get_attribute(f"data-{axis}-ticks"))


def five_minutes_of_samples(collect):
    """A real sample kept again every 2 s back over the last 5 minutes (as a
    worker running for that long leaves them), and its time."""
    data = collect()
    with collect.app.app_context():
        DashboardSample.delete().execute()
        now = data["timestamp"]
        for seconds in range(298, -1, -2):
            moment = now - seconds
            databases = {**data["databases"], "timestamp": moment}
            dashboard.keep({**data, "timestamp": moment, "databases": databases}, 150)
    return now


def test_legends_show_the_latest_values_without_hover(collect, open_dashboard):
    for _ in range(3):
        collect()
    page = open_dashboard()
    expect(page.locator("#charts")).to_have_attribute("data-points", "3")
    cpu = legend_values(page, "cpu")
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", cpu["Time"]), cpu
    assert all(re.fullmatch(r"\d+\.\d %", cpu[label]) for label in ("user", "system", "iowait"))
    assert re.fullmatch(r"\d+", legend_values(page, "active_backends")["active"])
    assert re.fullmatch(r"\d+\.\d\d", legend_values(page, "loadaverage")["1 min"])


def test_count_axes_start_at_zero_with_integer_ticks(collect, open_dashboard):
    for _ in range(2):
        collect()
    page = open_dashboard()
    expect(page.locator("#charts")).to_have_attribute("data-points", "2")
    labels = [tick["text"] for tick in ticks(page, "active_backends", "y")]
    assert labels[0] == "0" and len(labels) >= 3
    assert all(re.fullmatch(r"\d+", label) for label in labels), labels
    percent = [tick["text"] for tick in ticks(page, "hitratio", "y")]
    assert percent[0] == "0 %", percent


@pytest.mark.parametrize("width", [1366, 390])
def test_time_ticks_are_24_hour_and_never_overlap(collect, open_dashboard, width):
    five_minutes_of_samples(collect)
    page = open_dashboard()
    page.set_viewport_size({"width": width, "height": 900})
    # 150 points, less those that leave the range as the test goes.
    expect(page.locator("#charts")).to_have_attribute("data-points", re.compile(r"1[3-5][0-9]"))
    for chart in CHARTS:
        expect(page.locator(f"#chart-{chart} canvas")).to_be_visible()
        drawn = ticks(page, chart, "x")
        assert len(drawn) >= 2, drawn
        assert all(TIME_TICK.fullmatch(tick["text"]) for tick in drawn), drawn
        for left, right in zip(drawn, drawn[1:], strict=False):
            assert left["to"] + 8 <= right["from"], (chart, left, right)


def test_times_are_in_the_browsers_time_zone(browser, service, collect, ui_user, sign_in):
    sample = collect()
    context = browser.new_context(base_url=service.url, timezone_id="Pacific/Chatham")
    violations = watch_csp_violations(context)
    page = context.new_page()
    sign_in(page, ui_user)
    page.goto("/ui/dashboard/")
    expect(page.locator("#charts")).to_have_attribute("data-points", "1")
    # Chatham is 12:45 or 13:45 ahead of UTC: no other zone gives these minutes.
    zone = datetime.timezone(datetime.timedelta(hours=13, minutes=45))
    moment = datetime.datetime.fromtimestamp(sample["timestamp"], zone)
    summer = moment.strftime("%Y-%m-%d %H:%M:%S")
    winter = (moment - datetime.timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S")
    assert legend_values(page, "cpu")["Time"] in (summer, winter)
    expect(page.locator("#last-sample")).to_have_text(re.compile(summer[11:] + "|" + winter[11:]))
    context.close()
    assert not violations, violations


def test_the_range_offers_only_what_is_kept(collect, open_dashboard):
    collect()
    page = open_dashboard()
    # 150 samples every 2 s: 5 minutes, shorter than the usual ranges.
    expect(page.locator("#range option")).to_have_text(["5 min (all kept)"])
    expect(page.locator("#range")).to_have_value("300")


def test_a_first_sample_says_when_the_rate_comes(collect, open_dashboard):
    collect()
    page = open_dashboard()
    expect(page.locator("#charts")).to_have_attribute("data-points", "1")
    # A rate needs two samples; the service has no worker to take the second.
    expect(page.locator("#chart-tps .chart-note")).to_have_text(
        re.compile(
            r"collecting: first data (in [12] s|any moment now|was due .* ago; is the worker .*)"
        )
    )
    expect(page.locator("#chart-tps .u-wrap")).to_be_hidden()
    expect(page.locator("#chart-cpu .chart-note")).to_be_hidden()


def test_without_samples_the_charts_say_they_are_collecting(collect, open_dashboard):
    page = open_dashboard()
    for chart in CHARTS:
        expect(page.locator(f"#chart-{chart} .chart-note")).to_have_text(
            "collecting: no sample yet; is the worker running?"
        )
