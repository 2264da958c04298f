"""The Monitoring page in Chromium: one chart per probe over the kept runs of
the chosen range, and the chart conventions (docs/ui-charts.md) on real runs."""

import datetime
import json
import os
import re

import pytest
from conftest import app_of
from playwright.sync_api import expect

from sentinel.dev import sandbox
from sentinel.extensions import postgres, redis
from sentinel.plugins.monitoring import monitoring, probes
from sentinel.state import MonitoringRun

pytestmark = pytest.mark.browser
REFRESH = 10  # s: the page refreshes every monitoring_interval (10 at least)


@pytest.fixture(scope="module")
def service(tmp_path_factory, pg_cluster, redis_server):
    """Sentinel under gunicorn whose page refreshes every REFRESH seconds."""
    state_dir = tmp_path_factory.mktemp("monitoring-ui-state")
    env = {
        **os.environ,
        "SENTINEL_STATE_DIR": str(state_dir),
        "SENTINEL_PG_DSN": pg_cluster.dsn(),
        "SENTINEL_REDIS_URL": redis_server.url,
        "SENTINEL_HOSTNAME": "sentinel.test",
        "SENTINEL_MONITORING_INTERVAL": str(REFRESH),
    }
    service = sandbox.Service(env, log=state_dir / "gunicorn.log").start()
    yield service
    service.stop()


@pytest.fixture
def service_app(service):
    """An app on the service's own state, Redis and cluster, to run its collector."""
    with app_of(service) as app:
        with app.app_context():
            MonitoringRun.delete().execute()
            # Earlier tests' samples would turn the first run's counters into rates.
            for key in redis.connection.scan_iter("sentinel:samples:*:probe:*"):
                redis.connection.delete(key)
        yield app


def collect_runs(app, count):
    with app.app_context():
        for _ in range(count):
            monitoring.collect_and_store(postgres.pool, redis.samples, app.config["SENTINEL"])


def get_data(page, query=""):
    """GET the page's data as its script does (asking for JSON)."""
    return page.request.get(f"/ui/monitoring/data{query}", headers={"Accept": "application/json"})


def test_the_page_draws_one_chart_per_probe_from_the_kept_runs(service_app, signed_in):
    collect_runs(service_app, 3)
    signed_in.goto("/ui/monitoring/")
    charts = signed_in.locator("#charts figure.chart")
    expect(charts).to_have_count(len(probes.NAMES))
    for name in probes.NAMES:
        chart = signed_in.locator(f"#chart-{name}")
        expect(chart).to_have_attribute("data-points", "3")
        expect(chart.locator("canvas")).to_have_count(1)
    expect(signed_in.locator("#no-runs")).to_be_hidden()
    expect(signed_in.locator("#runs-kept")).to_contain_text("3 runs kept")
    # Series named after what the runs hold: databases, CPU states, ...
    expect(signed_in.locator("#chart-db_size .u-legend")).to_contain_text("postgres")
    expect(signed_in.locator("#chart-db_size .u-legend")).to_contain_text("template1")
    expect(signed_in.locator("#chart-cpu .u-legend")).to_contain_text("iowait")
    # A chart with no data says why.
    expect(signed_in.locator("#chart-replication_lag .chart-note")).to_have_text(
        "No replication: this instance is a primary, not a standby."
    )


def test_an_open_page_adds_the_runs_collected_since(service_app, signed_in):
    collect_runs(service_app, 2)
    signed_in.goto("/ui/monitoring/")
    expect(signed_in.locator("#chart-cpu")).to_have_attribute("data-points", "2")
    collect_runs(service_app, 1)
    for name in probes.NAMES:
        expect(signed_in.locator(f"#chart-{name}")).to_have_attribute(
            "data-points", "3", timeout=(REFRESH + 5) * 1000
        )
    expect(signed_in.locator("#runs-kept")).to_contain_text("3 runs kept")


def test_the_page_data_has_a_value_per_run_for_each_series(service_app, signed_in):
    collect_runs(service_app, 2)
    answer = get_data(signed_in)
    assert answer.ok
    data = answer.json()
    assert data["kept"] == 2
    charts = {chart["probe"]: chart for chart in data["charts"]}
    assert list(charts) == list(probes.NAMES)
    for chart in charts.values():
        assert len(chart["data"]) == len(chart["labels"]) + 1
        assert all(len(values) == 2 for values in chart["data"])
    sizes = dict(zip(charts["db_size"]["labels"], charts["db_size"]["data"][1:], strict=True))
    assert all(size > 1024 * 1024 for size in sizes["postgres"])  # bytes
    # Counters need a previous run: the first run has no rate, the second one has.
    commits = charts["xacts"]["data"][1]
    assert commits[0] is None and commits[1] > 0


def test_the_page_data_after_a_run_holds_only_the_later_runs(service_app, signed_in):
    collect_runs(service_app, 2)
    first = get_data(signed_in).json()
    nothing_new = get_data(signed_in, f"?after={first['last']}").json()
    assert nothing_new["last"] == first["last"]
    assert all(chart["data"][0] == [] for chart in nothing_new["charts"])
    collect_runs(service_app, 1)
    later = get_data(signed_in, f"?after={first['last']}").json()
    assert later["kept"] == 3
    assert later["last"] > first["last"]
    assert all(len(chart["data"][0]) == 1 for chart in later["charts"])


@pytest.mark.parametrize("after", ["x", "-1", "1.5", "9" * 30])
def test_the_page_data_refuses_a_malformed_after(service_app, signed_in, after):
    answer = get_data(signed_in, f"?after={after}")
    assert answer.status == 406
    assert answer.json() == {"error": "Parameter 'after' is malformed."}


def test_an_empty_history_says_the_collector_has_not_run(service_app, signed_in):
    signed_in.goto("/ui/monitoring/")
    expect(signed_in.locator("#no-runs")).to_be_visible()
    expect(signed_in.locator("#no-runs")).to_contain_text("The collector has not run yet")
    expect(signed_in.locator("#runs-kept")).to_have_text("No run kept yet.")
    expect(signed_in.locator("#charts figure.chart")).to_have_count(len(probes.NAMES))
    expect(signed_in.locator("#chart-cpu .chart-note")).to_have_text(
        "collecting: no sample yet; is the worker running?"
    )


def test_the_page_data_needs_a_signed_in_user(service, page):
    answer = page.request.get("/ui/monitoring/data", max_redirects=0)
    assert answer.status == 302
    assert "/ui/login" in answer.headers["location"]


def legend_values(page, chart):
    """{series label: legend text} of a chart, as the page shows it."""
    rows = page.locator(f"#chart-{chart} .u-legend .u-series")
    return {
        row.locator("th").inner_text().strip(): row.locator("td").inner_text().strip()
        for row in rows.all()
    }


def ticks(page, chart, axis):
    return [
        tick["text"]
        for tick in json.loads(page.locator(f"#chart-{chart}").get_attribute(f"data-{axis}-ticks"))
    ]


def move_runs_back(app, seconds):
    """Make the kept runs look collected `seconds` earlier."""
    with app.app_context():
        for run in MonitoringRun.select():
            run.collected_at -= datetime.timedelta(seconds=seconds)
            run.save()


def test_legends_show_the_latest_values_in_their_units(service_app, signed_in):
    collect_runs(service_app, 2)
    signed_in.goto("/ui/monitoring/")
    expect(signed_in.locator("#chart-db_size")).to_have_attribute("data-points", "2")
    sizes = legend_values(signed_in, "db_size")
    assert re.fullmatch(r"\d+(\.\d+)? MiB", sizes["postgres"]), sizes
    assert re.fullmatch(r"\d+", legend_values(signed_in, "sessions")["idle"])
    assert re.fullmatch(r"\d+\.\d %", legend_values(signed_in, "heap_bloat")["postgres"])


def test_size_axes_are_binary_and_bloat_axes_start_at_zero(service_app, signed_in):
    collect_runs(service_app, 2)
    signed_in.goto("/ui/monitoring/")
    expect(signed_in.locator("#chart-db_size")).to_have_attribute("data-points", "2")
    sizes = ticks(signed_in, "db_size", "y")
    assert sizes[0] == "0 B" and all(re.search(r" (B|KiB|MiB)$", tick) for tick in sizes), sizes
    # A bloat of a few percent is drawn on a scale to 10 % at least, from 0.
    bloat = ticks(signed_in, "heap_bloat", "y")
    assert bloat[0] == "0 %" and float(bloat[-1].rstrip(" %")) >= 8, bloat
    counts = ticks(signed_in, "sessions", "y")
    assert counts[0] == "0" and all(re.fullmatch(r"\d+", tick) for tick in counts), counts


def test_a_first_run_says_when_the_rates_come(service_app, signed_in):
    collect_runs(service_app, 1)
    signed_in.goto("/ui/monitoring/")
    expect(signed_in.locator("#chart-sessions")).to_have_attribute("data-points", "1")
    # Rates need the next run, due REFRESH seconds after this one.
    note = signed_in.locator("#chart-xacts .chart-note")
    expect(note).to_have_text(re.compile(r"collecting: first data in ([1-9]|10) s"))
    expect(signed_in.locator("#chart-sessions .chart-note")).to_be_hidden()
    expect(signed_in.locator("#chart-sessions .u-legend")).to_be_visible()


def test_the_range_offers_the_usual_ranges_the_retention_keeps(service_app, signed_in):
    signed_in.goto("/ui/monitoring/")
    # Six hours kept (monitoring_retention): no 24 h.
    expect(signed_in.locator("#range option")).to_have_text(["15 min", "1 h", "6 h (all kept)"])
    expect(signed_in.locator("#range")).to_have_value("21600")


def test_a_shorter_range_leaves_out_older_runs_and_stays_chosen(service_app, signed_in):
    collect_runs(service_app, 2)
    move_runs_back(service_app, 3600)
    collect_runs(service_app, 1)
    signed_in.goto("/ui/monitoring/")
    expect(signed_in.locator("#chart-cpu")).to_have_attribute("data-points", "3")
    signed_in.locator("#range").select_option(label="15 min")
    expect(signed_in.locator("#chart-cpu")).to_have_attribute("data-points", "1")
    assert signed_in.url.endswith("?range=900")
    signed_in.reload()
    expect(signed_in.locator("#range")).to_have_value("900")
    expect(signed_in.locator("#chart-cpu")).to_have_attribute("data-points", "1")
    signed_in.locator("#range").select_option(label="6 h (all kept)")
    expect(signed_in.locator("#chart-cpu")).to_have_attribute("data-points", "3")


def test_the_page_data_keeps_to_the_range(service_app, signed_in):
    collect_runs(service_app, 1)
    move_runs_back(service_app, 3600)
    collect_runs(service_app, 1)
    recent = get_data(signed_in, "?range=900").json()
    assert recent["kept"] == 2
    assert all(len(chart["data"][0]) == 1 for chart in recent["charts"])
    assert len(get_data(signed_in, "?range=21600").json()["charts"][0]["data"][0]) == 2
    # A range not offered (a link made under another retention) shows all that is kept.
    assert len(get_data(signed_in, "?range=1234").json()["charts"][0]["data"][0]) == 2


@pytest.mark.parametrize("value", ["x", "0", "1.5", "9" * 30])
def test_the_page_data_refuses_a_malformed_range(service_app, signed_in, value):
    answer = get_data(signed_in, f"?range={value}")
    assert answer.status == 406
    assert answer.json() == {"error": "Parameter 'range' is malformed."}
