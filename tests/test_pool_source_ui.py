"""A source's own page: its status word and colour, its slots' health, its
discovered databases, and charts of the samples the collection kept (written
here with history.record into the service's state, as a worker writes them),
over the chosen range; the Sources list's last-collection column and status
colours; and, end to end, a real worker's samples drawn in the browser."""

import datetime
import re
import subprocess
import sys
import time
import uuid

import orjson
import pytest
from conftest import app_of, sign_in_once
from playwright.sync_api import expect

from sentinel.pool import history, store
from sentinel.pool.models import DiscoveredDatabase, ReplicationSlot, Sample, Source
from sentinel.state import utcnow

browser = pytest.mark.browser

DAY = 86400


def kpi(backends, active=1, waiting=0, oldest=2.5):
    return [
        {
            "backends": backends,
            "active_backends": active,
            "waiting_backends": waiting,
            "oldest_xact_seconds": oldest,
        }
    ]


def db_stats(commits, rollbacks=0, datname="postgres"):
    return [{"datname": datname, "xact_commit": commits, "xact_rollback": rollbacks}]


class Pool:
    """The service's state, written as the APIs and the collection write it."""

    def __init__(self, app, cluster):
        self.app = app
        self.cluster = cluster

    def create(self, **fields):
        values = {
            "name": f"src-{uuid.uuid4().hex[:8]}",
            "host": "127.0.0.1",
            "port": self.cluster.port,
            "user": "postgres",
            "password": self.cluster.password,
            "metrics": {"kpi": 10, "db_stats": 10},
            **fields,
        }
        with self.app.app_context():
            return store.create(values)

    def collected(self, source, connected=True, error=None, ago=0):
        """How the last run went, as the collection writes it."""
        with self.app.app_context():
            Source.update(
                connected=connected,
                last_error=error,
                last_collected_at=utcnow() - datetime.timedelta(seconds=ago) if connected else None,
            ).where(Source.id == source["id"]).execute()

    def record(self, source, samples, dbname="postgres", every=10, start=None):
        """Runs of `samples` ([{metric: rows}]), one every `every` seconds up
        to now (or from `start`)."""
        start = start if start is not None else (int(time.time()) // every - len(samples)) * every
        with self.app.app_context():
            for number, results in enumerate(samples, 1):
                slot = start + number * every
                history.record(source["id"], dbname, slot, slot + 0.2, results)

    def slot(self, source, **health):
        with self.app.app_context():
            ReplicationSlot.create(
                source=source["id"], publication_name="pub", slot_name="sequin_slot", **health
            )

    def discovered(self, source, *dbnames):
        with self.app.app_context():
            for dbname in dbnames:
                DiscoveredDatabase.create(source=source["id"], dbname=dbname)


@pytest.fixture(scope="module")
def pool(service, pg_cluster):
    with app_of(service) as app:
        yield Pool(app, pg_cluster)


@pytest.fixture(scope="module")
def admin(browser, service, pool):
    return sign_in_once(browser, service, pool.app, "admin")


@pytest.fixture(scope="module")
def viewer(browser, service, pool):
    return sign_in_once(browser, service, pool.app, "viewer")


def open_source(page, cookies, source, query=""):
    page.context.add_cookies(cookies)
    page.goto(f"/ui/sources/{source['id']}{query}")
    expect(page.locator("#source-refresh-status")).to_contain_text("Refreshed at")
    return page


def chart(page, chart_id):
    return page.locator(f"#chart-{chart_id}")


@browser
def test_recorded_samples_are_charted_point_by_point(page, admin, pool):
    source = pool.create()
    pool.collected(source)
    pool.record(source, [{"kpi": kpi(n), "db_stats": db_stats(100 * n)} for n in range(1, 6)])
    open_source(page, admin, source)
    expect(chart(page, "backends")).to_have_attribute("data-points", "5")
    # A rate needs two samples: five samples make four rates.
    expect(chart(page, "transactions")).to_have_attribute("data-points", "4")
    expect(chart(page, "transactions")).to_contain_text("10.0/s")
    expect(page.locator("h1")).to_contain_text(source["name"])


@browser
def test_a_counter_reset_leaves_a_gap_not_a_negative_rate(page, admin, pool):
    source = pool.create()
    pool.collected(source)
    commits = [100, 200, 300, 5, 105]
    pool.record(source, [{"db_stats": db_stats(n)} for n in commits])
    open_source(page, admin, source)
    expect(chart(page, "transactions")).to_have_attribute("data-points", "4")
    values = page.evaluate(
        "() => fetch(location.pathname + '/data', {headers: {Accept: 'application/json'}})"
        ".then((r) => r.json()).then((d) => d.charts.find((c) => c.id === 'transactions').data[1])"
    )
    assert values == [10.0, 10.0, None, 10.0]


@browser
def test_a_new_run_is_drawn_at_the_next_refresh(page, admin, pool):
    source = pool.create(metrics={"kpi": 2})
    pool.collected(source)
    now = int(time.time()) // 2 * 2
    pool.record(source, [{"kpi": kpi(n)} for n in (1, 2, 3)], every=2, start=now - 20)
    open_source(page, admin, source)
    expect(chart(page, "backends")).to_have_attribute("data-points", "3")
    pool.record(source, [{"kpi": kpi(4)}], every=2, start=now - 2)
    # The page refreshes at the source's pace, 2 s, asking for what came since.
    expect(chart(page, "backends")).to_have_attribute("data-points", "4")
    expect(chart(page, "backends")).to_contain_text(re.compile(r"backends:?\s*4"))


@browser
def test_the_range_picker_changes_what_is_shown(page, admin, pool):
    source = pool.create()
    pool.collected(source)
    now = int(time.time()) // 60 * 60
    # Three runs in the last 15 minutes, four more between one and six hours ago.
    old = [{"kpi": kpi(3)} for _ in range(4)]
    pool.record(source, old, every=3600, start=now - 6 * 3600)
    pool.record(source, [{"kpi": kpi(5)} for _ in range(3)], every=60, start=now - 300)
    open_source(page, admin, source)
    expect(chart(page, "backends")).to_have_attribute("data-points", "7")
    page.get_by_label("Range").select_option(label="15 min")
    expect(chart(page, "backends")).to_have_attribute("data-points", "3")
    assert "range=900" in page.url
    page.reload()
    expect(page.get_by_label("Range")).to_have_value("900")
    expect(chart(page, "backends")).to_have_attribute("data-points", "3")


@browser
def test_an_empty_chart_says_when_its_first_sample_is_expected(page, admin, pool):
    source = pool.create(metrics={"kpi": 30})
    open_source(page, admin, source)
    expect(chart(page, "backends").locator(".chart-note")).to_contain_text(
        re.compile(r"Collected every 30 s; first sample expected by \d\d:\d\d:\d\d")
    )
    expect(chart(page, "wal").locator(".chart-note")).to_have_text(
        "Not collected: wal is not among the metrics this source collects."
    )


STATUSES = [
    # (how the last run went, the word, its colour)
    ({"connected": True}, "connected", "ok"),
    ({"connected": True, "ago": 3600}, "late", "warning"),
    ({"connected": False, "error": "connection refused"}, "unreachable", "critical"),
    (None, "not checked yet", "unknown"),
    ({"enabled": False}, "disabled", "unknown"),
]


@browser
@pytest.mark.parametrize(("run", "word", "level"), STATUSES, ids=[s[1] for s in STATUSES])
def test_the_page_shows_the_status_word_and_colour(page, admin, pool, run, word, level):
    source = pool.create(enabled=(run or {}).get("enabled", True))
    if run and "connected" in run:
        pool.collected(source, **run)
    open_source(page, admin, source)
    expect(page.locator("#source-status")).to_have_text(word)
    expect(page.locator("#source-status-tile")).to_have_class(re.compile(f"status-{level}"))
    if word == "unreachable":
        expect(page.locator("#source-last-error")).to_have_text("connection refused")


@browser
def test_a_slot_shows_its_health(page, admin, pool):
    checked = pool.create()
    pool.slot(
        checked,
        active=False,
        retained_wal_bytes=3 * 1024 * 1024,
        xmin_age=1234,
        checked_at=utcnow(),
    )
    unchecked = pool.create()
    pool.slot(unchecked)
    open_source(page, admin, checked)
    slot = page.locator("#slots tbody tr", has_text="sequin_slot")
    expect(slot.locator(".badge.status-warning")).to_have_text("inactive")
    expect(slot).to_contain_text("3.00 MiB")
    expect(slot).to_contain_text("1\u202f234 transactions")
    open_source(page, admin, unchecked)
    slot = page.locator("#slots tbody tr", has_text="sequin_slot")
    expect(slot).to_contain_text("not checked yet")
    expect(slot.locator("td", has_text="not checked yet")).to_have_count(4)


@browser
def test_a_slot_gone_from_the_server_says_so(page, admin, pool):
    source = pool.create()
    pool.slot(source, active=False, checked_at=utcnow())
    open_source(page, admin, source)
    slot = page.locator("#slots tbody tr", has_text="sequin_slot")
    expect(slot.locator(".badge.status-critical")).to_have_text("not on the server")


@browser
def test_discovered_databases_are_listed_and_charted_one_at_a_time(page, admin, pool):
    source = pool.create(kind="postgres-continuous-discovery", metrics={"db_stats": 10})
    pool.collected(source)
    pool.discovered(source, "sales", "stock")
    rows = [
        db_stats(100 * n, datname="sales") + db_stats(10 * n, datname="stock") for n in (1, 2, 3)
    ]
    pool.record(source, [{"db_stats": r} for r in rows])
    open_source(page, admin, source)
    expect(page.locator("#discovered")).to_contain_text(f"monitored as {source['name']}_sales")
    expect(chart(page, "transactions")).to_contain_text("11.0/s")
    page.locator("#database").select_option("stock")
    expect(chart(page, "transactions")).to_contain_text("1.0/s")
    assert "database=stock" in page.url


@browser
def test_the_list_shows_the_last_collection_and_the_status_colour(page, admin, pool):
    late = pool.create()
    pool.collected(late, ago=3 * 3600)
    page.context.add_cookies(admin)
    page.goto("/ui/sources/")
    listed = page.locator("#sources tbody tr", has=page.locator("td.name", has_text=late["name"]))
    expect(listed.locator(".badge.status-warning")).to_have_text("late")
    moment = listed.locator("time")
    expect(moment).to_have_text("3 h ago")
    expect(moment).to_have_attribute("title", re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d "))
    listed.get_by_role("link", name=late["name"]).click()
    expect(page.locator("h1")).to_contain_text(late["name"])


@browser
def test_a_viewer_sees_the_page_read_only(page, viewer, pool):
    source = pool.create()
    open_source(page, viewer, source)
    expect(page.get_by_text("changing sources needs the admin role")).to_be_visible()
    expect(page.get_by_role("button", name="Disable")).to_have_count(0)


@browser
def test_an_admin_disables_the_source_from_its_page(page, admin, pool):
    source = pool.create()
    pool.collected(source)
    open_source(page, admin, source)
    page.get_by_role("button", name="Disable").click()
    expect(page.locator("#outcome")).to_contain_text(f"Source {source['name']} disabled")
    expect(page.locator("#source-status")).to_have_text("disabled")
    expect(page.get_by_role("button", name="Enable")).to_be_visible()


@pytest.fixture
def service_worker(service, tmp_path):
    """A real `python -m sentinel worker` on the service's state and Redis,
    dispatching every second."""
    log = open(tmp_path / "worker.log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [sys.executable, "-m", "sentinel", "worker"],
        env={**service.env, "SENTINEL_POOL_DISPATCH_INTERVAL": "1"},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    yield process
    process.terminate()
    process.wait(30)
    log.close()


@browser
def test_a_source_collected_by_a_real_worker_gets_points_in_its_chart(
    page, admin, pool, service_worker
):
    source = pool.create(metrics={"kpi": 2, "db_stats": 2})
    open_source(page, admin, source)
    # The page refreshes at the source's pace (2 s) and draws each new run.
    some = re.compile(r"^[1-9][0-9]*$")
    expect(chart(page, "backends")).to_have_attribute("data-points", some, timeout=30_000)
    expect(chart(page, "transactions")).to_have_attribute("data-points", some, timeout=30_000)
    expect(page.locator("#source-status")).to_have_text("connected")
    expect(page.locator("#source-last-collected time")).to_be_visible()


@browser
def test_the_page_fits_a_phone(page, admin, pool):
    from test_ui_layout import OVERFLOWING

    source = pool.create(
        name=f"a-rather-long-source-name-{uuid.uuid4().hex[:8]}",
        host="a-long-host-name.of.a.datacenter.example.com",
        tags={"environment": "production", "team": "database-administrators"},
    )
    pool.collected(source)
    pool.slot(source, active=True, retained_wal_bytes=4096, xmin_age=12, checked_at=utcnow())
    pool.record(source, [{"kpi": kpi(n), "db_stats": db_stats(100 * n)} for n in range(1, 4)])
    page.set_viewport_size({"width": 390, "height": 844})
    open_source(page, admin, source)
    expect(chart(page, "backends")).to_have_attribute("data-points", "3")
    assert page.evaluate(OVERFLOWING) == []


# Through the Flask client, last in the module: the `app` fixture points the
# state database at its own, which the browser tests' writes must not follow.


def signed_in(client, make_user):
    """Sign a Flask test client in through the form, as a browser does."""
    username, password = make_user("sourcepage", "sourcepage-password")
    login = client.get("/ui/login").get_data(as_text=True)
    token = re.search(r'<meta name="csrf-token" content="([^"]+)"', login).group(1)
    client.post("/ui/login", data={"username": username, "password": password, "csrf_token": token})
    return {"Accept": "application/json"}


def test_a_long_range_comes_in_a_bounded_number_of_points_peaks_kept(
    app, client, make_user, pg_cluster
):
    """Through the Flask client, each answer checked against /openapi.json."""
    headers = signed_in(client, make_user)
    with app.app_context():
        source = store.create(
            {"name": "long", "host": "127.0.0.1", "user": "postgres", "metrics": {"kpi": 10}}
        )
        start = int(time.time()) // 10 * 10 - 602 * 10
        for n in range(602):
            slot = start + n * 10
            results = {"kpi": kpi(n % 7), "db_stats": db_stats(100 * n)}
            history.record(source["id"], "postgres", slot, slot + 0.5, results)
    answer = client.get(f"/ui/sources/{source['id']}/data", headers=headers).get_json()
    charts = {chart["id"]: chart for chart in answer["charts"]}
    times, backends = charts["backends"]["data"][:2]
    # 602 samples (601 rates), more than the 600 points a chart takes: merged two by two.
    assert len(times) == 301
    assert max(backends) == 6 and min(backends) >= 1
    # A merged rate is the increase over the time it took.
    rates = charts["transactions"]["data"]
    assert len(rates[0]) == 301 and set(rates[1]) == {10.0}
    page = client.get(f"/ui/sources/{source['id']}", headers={"Accept": "text/html"})
    assert page.status_code == 200 and "long" in page.get_data(as_text=True)
    form = client.get(f"/ui/sources/{source['id']}", headers=headers)
    assert form.get_json()["source"]["name"] == "long"


def test_a_range_of_many_runs_is_read_on_a_coarser_grid(app, client, make_user):
    headers = signed_in(client, make_user)
    with app.app_context():
        source = store.create(
            {"name": "many", "host": "127.0.0.1", "user": "postgres", "metrics": {"db_stats": 10}}
        )
        # 4,800 runs of 10 s, written at once (history.record writes one run a call).
        start = int(time.time()) // 20 * 20 - 4800 * 10
        runs = [
            {
                "source": source["id"],
                "dbname": "postgres",
                "metric": "db_stats",
                "slot": start + n * 10,
                "collected_at": start + n * 10 + 0.5,
                "data": orjson.dumps(db_stats(100 * n)).decode(),
            }
            for n in range(4800)
        ]
        Sample.insert_many(runs).execute()
    answer = client.get(f"/ui/sources/{source['id']}/data", headers=headers).get_json()
    times, rates = next(c for c in answer["charts"] if c["id"] == "transactions")["data"][:2]
    # Every other run read (2,400), their 2,399 rates merged four by four.
    assert len(times) == 600
    assert set(rates) == {10.0}
