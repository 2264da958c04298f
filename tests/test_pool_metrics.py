"""GET /metrics: the pool's latest samples as Prometheus scrapes them, read
back with prometheus-client's own parser. Samples are written as collection
writes them (history.record); each source's status as collection leaves it."""

import datetime
import time

import pytest
from polling import wait_for
from prometheus_client.parser import text_string_to_metric_families

from sentinel.pool import history, store
from sentinel.pool.models import DiscoveredDatabase, LatestSample, Source

HOSTILE_VALUE = 'a "quoted" back\\slash\nand a new line'
HOSTILE_DBNAME = 'we"ird\\db'


def utcnow():
    return datetime.datetime.now(datetime.UTC).replace(tzinfo=None)


class Pool:
    """Sources made through the store, with the status and samples the
    collection would have left them."""

    def __init__(self, app):
        self.app = app
        self.slot = int(time.time()) // 60 * 60

    def source(self, name, samples=None, dbname="postgres", connected=True, **fields):
        with self.app.app_context():
            created = store.create(
                {"name": name, "host": "127.0.0.1", "user": "monitor", "dbname": dbname, **fields}
            )
            collected = utcnow() if connected else None
            Source.update(connected=connected, last_collected_at=collected).where(
                Source.id == created["id"]
            ).execute()
            for db, results in (samples or {}).items():
                history.record(created["id"], db, self.slot, time.time(), results)
        return created

    def discovered(self, source, *dbnames):
        with self.app.app_context():
            for dbname in dbnames:
                DiscoveredDatabase.create(source=source["id"], dbname=dbname)


@pytest.fixture
def pool(app):
    return Pool(app)


@pytest.fixture
def sentinel_env(sentinel_env):
    """A worker (the `worker` fixture) that looks for due runs every second."""
    return {**sentinel_env, "SENTINEL_POOL_DISPATCH_INTERVAL": "1"}


@pytest.fixture
def scrape(client, make_token):
    """scrape() -> {family name: prometheus_client Metric} of GET /metrics."""
    token = make_token("scraper", role="viewer")

    def get():
        answer = client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 200, answer.get_data(as_text=True)
        families = list(text_string_to_metric_families(answer.get_data(as_text=True)))
        names = [family.name for family in families]
        # A family whose samples were not written together would come out twice.
        assert len(names) == len(set(names)), names
        return {family.name: family for family in families}

    return get


def samples(families, name, **labels):
    """The samples of a family whose labels include `labels`."""
    family = families.get(name)
    if family is None:
        return []
    return [
        sample
        for sample in family.samples
        if all(sample.labels.get(key) == value for key, value in labels.items())
    ]


def only(families, name, **labels):
    [sample] = samples(families, name, **labels)
    return sample


KPI = {"backends": 3, "oldest_xact_seconds": 1.5, "xact_commit": 1200, "in_recovery": 0}
DB_STATS = [
    {"datname": "sales", "numbackends": 2, "xact_commit": 10, "blk_read_time": None},
    {"datname": "postgres", "numbackends": 1, "xact_commit": 7, "blk_read_time": 0.5},
]
SLOTS = [
    {
        "slot_name": "orders",
        "slot_type": "logical",
        "database": "sales",
        "active": 1,
        "retained_wal_bytes": 4096,
        "xmin_age": None,
        "catalog_xmin_age": 12,
    }
]


def test_the_answer_is_prometheus_text_format_0_0_4(client, make_token, pool):
    pool.source("sales", {"sales": {"kpi": [KPI]}}, dbname="sales")
    token = make_token("scraper", role="viewer")
    answer = client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert "# TYPE sentinel_pool_kpi_backends gauge\n" in answer.get_data(as_text=True)


def test_a_gauge_column_is_a_gauge_labelled_with_the_source_its_database_and_tags(pool, scrape):
    pool.source("sales", {"sales": {"kpi": [KPI]}}, dbname="sales", tags={"env": "prod"})
    families = scrape()
    assert families["sentinel_pool_kpi_backends"].type == "gauge"
    sample = only(families, "sentinel_pool_kpi_backends")
    assert sample.labels == {"source": "sales", "dbname": "sales", "env": "prod"}
    assert sample.value == 3
    assert only(families, "sentinel_pool_kpi_oldest_xact_seconds").value == 1.5


def test_a_column_outside_the_gauges_is_a_counter_named_total(pool, scrape):
    pool.source("sales", {"sales": {"kpi": [KPI]}}, dbname="sales")
    families = scrape()
    counter = families["sentinel_pool_kpi_xact_commit"]  # the parser drops `_total`
    assert counter.type == "counter"
    assert [(s.name, s.value) for s in counter.samples] == [
        ("sentinel_pool_kpi_xact_commit_total", 1200)
    ]


def test_the_help_is_the_catalogs_description(pool, scrape):
    pool.source("sales", {"sales": {"kpi": [KPI]}}, dbname="sales")
    help_text = scrape()["sentinel_pool_kpi_backends"].documentation
    assert help_text.startswith("kpi.backends: One-row summary: backends")


def test_text_columns_are_labels_of_each_row(pool, scrape):
    pool.source("sales", {"sales": {"db_stats": DB_STATS, "replication_slots": SLOTS}})
    families = scrape()
    assert only(families, "sentinel_pool_db_stats_numbackends", datname="sales").value == 2
    assert only(families, "sentinel_pool_db_stats_numbackends", datname="postgres").value == 1
    slot = only(families, "sentinel_pool_replication_slots_retained_wal_bytes")
    assert slot.labels == {
        "source": "sales",
        "dbname": "sales",
        "slot_name": "orders",
        "slot_type": "logical",
        "database": "sales",
    }
    assert slot.value == 4096


def test_nulls_are_left_out(pool, scrape):
    pool.source("sales", {"sales": {"db_stats": DB_STATS, "replication_slots": SLOTS}})
    families = scrape()
    read_time = families["sentinel_pool_db_stats_blk_read_time"].samples
    assert [(s.labels["datname"], s.value) for s in read_time] == [("postgres", 0.5)]
    assert "sentinel_pool_replication_slots_xmin_age" not in families
    assert only(families, "sentinel_pool_replication_slots_catalog_xmin_age").value == 12


def test_booleans_are_1_or_0(pool, scrape):
    rows = [{"active": True, "slot_name": "a"}, {"active": False, "slot_name": "b"}]
    pool.source("sales", {"postgres": {"replication_slots": rows}})
    families = scrape()
    assert only(families, "sentinel_pool_replication_slots_active", slot_name="a").value == 1
    assert only(families, "sentinel_pool_replication_slots_active", slot_name="b").value == 0


def test_a_discovered_database_is_named_after_its_source_and_database(pool, scrape):
    tables = [{"schemaname": "public", "relname": "orders", "n_live_tup": 40, "seq_scan": 3}]
    fleet = pool.source(
        "fleet",
        {"app1": {"table_stats": tables}, "app2": {"table_stats": tables}},
        kind="postgres-continuous-discovery",
    )
    pool.discovered(fleet, "app1", "app2")
    families = scrape()
    live = families["sentinel_pool_table_stats_n_live_tup"].samples
    assert sorted((s.labels["source"], s.labels["dbname"]) for s in live) == [
        ("fleet_app1", "app1"),
        ("fleet_app2", "app2"),
    ]
    # The source's own status keeps its own name.
    assert only(families, "sentinel_pool_source_up", source="fleet").value == 1


def test_a_statement_is_told_by_its_ids_and_its_text_is_left_out(pool, scrape):
    statement = {
        "queryid": -4211,
        "userid": 10,
        "calls": 5,
        "mean_time_ms": 0.25,
        "query": "ALTER ROLE app PASSWORD 'hunter2-secret'",
    }
    pool.source("sales", {"sales": {"stat_statements": [statement]}}, dbname="sales")
    families = scrape()
    calls = only(families, "sentinel_pool_stat_statements_calls")
    assert calls.labels == {
        "source": "sales",
        "dbname": "sales",
        "queryid": "-4211",
        "userid": "10",
    }
    assert calls.value == 5
    assert "sentinel_pool_stat_statements_queryid" not in families
    every_label = {key for family in families.values() for s in family.samples for key in s.labels}
    assert "query" not in every_label


def test_hostile_tag_values_and_names_come_back_as_given(pool, scrape):
    tags = {
        "env": HOSTILE_VALUE,
        "source": "spoofed",
        "1st-rack": "r1",
        "__name__": "evil",
        "datname": "mine",
    }
    table = {"schemaname": "public", "relname": HOSTILE_VALUE, "n_live_tup": 1}
    samples_of_odd = {"db_stats": DB_STATS[:1], "kpi": [KPI], "table_stats": [table]}
    pool.source("odd", {HOSTILE_DBNAME: samples_of_odd}, tags=tags)
    families = scrape()
    assert only(families, "sentinel_pool_table_stats_n_live_tup").labels["relname"] == HOSTILE_VALUE
    kpi = only(families, "sentinel_pool_kpi_backends")
    assert kpi.labels == {
        "source": "odd",
        "dbname": HOSTILE_DBNAME,
        "env": HOSTILE_VALUE,
        "tag_source": "spoofed",
        "tag_1st_rack": "r1",
        "tag___name__": "evil",
        "datname": "mine",
    }
    # On a metric with a datname column, the tag gives way to the row's own.
    stats = only(families, "sentinel_pool_db_stats_numbackends")
    assert stats.labels["datname"] == "sales"
    assert stats.labels["tag_datname"] == "mine"
    assert only(families, "sentinel_pool_source_up", source="odd").labels["env"] == HOSTILE_VALUE


def test_tags_edited_after_a_sample_was_written_label_it_at_the_next_scrape(app, pool, scrape):
    sales = pool.source("sales", {"sales": {"kpi": [KPI], "db_stats": DB_STATS}}, dbname="sales")
    with app.app_context():
        store.update(sales["id"], {"tags": {"env": "prod", "datname": "mine"}})
    families = scrape()
    assert only(families, "sentinel_pool_kpi_backends").labels["env"] == "prod"
    # Renamed where the metric's rows have a datname of their own, as ever.
    stats = only(families, "sentinel_pool_db_stats_numbackends", datname="sales")
    assert stats.labels["tag_datname"] == "mine"


def test_a_sample_written_before_its_lines_were_kept_is_served_the_same(app, pool, scrape):
    samples_of_sales = {"kpi": [KPI], "db_stats": DB_STATS, "replication_slots": SLOTS}
    pool.source("sales", {"sales": samples_of_sales}, tags={"env": "prod", "datname": "mine"})
    written = scrape()
    with app.app_context():
        # As an upgrade leaves the samples collected before it.
        LatestSample.update(lines=None).execute()
    assert scrape() == written


def test_a_source_with_no_sample_yet_has_its_status(pool, scrape):
    pool.source("fresh", connected=None)
    families = scrape()
    assert only(families, "sentinel_pool_source_status", source="fresh").labels == {
        "source": "fresh",
        "status": "not checked yet",
    }
    assert only(families, "sentinel_pool_source_up", source="fresh").value == 0
    assert not samples(families, "sentinel_pool_source_last_collection_timestamp_seconds")


def test_a_collected_source_is_up_with_its_last_collection_time(pool, scrape):
    before = time.time()
    pool.source("sales", {"sales": {"kpi": [KPI]}}, metrics={"kpi": 60})
    families = scrape()
    assert only(families, "sentinel_pool_source_status").labels["status"] == "connected"
    assert only(families, "sentinel_pool_source_up").value == 1
    at = only(families, "sentinel_pool_source_last_collection_timestamp_seconds").value
    assert before - 1 <= at <= time.time()


def test_disabled_and_unreachable_sources_keep_their_status_but_not_their_samples(pool, scrape):
    pool.source("off", {"postgres": {"kpi": [KPI]}}, enabled=False)
    pool.source("down", {"postgres": {"kpi": [KPI]}}, connected=False)
    pool.source("up", {"postgres": {"kpi": [KPI]}})
    families = scrape()
    assert [s.labels["source"] for s in families["sentinel_pool_kpi_backends"].samples] == ["up"]
    statuses = {
        s.labels["source"]: s.labels["status"]
        for s in families["sentinel_pool_source_status"].samples
    }
    assert statuses == {"off": "disabled", "down": "unreachable", "up": "connected"}
    assert only(families, "sentinel_pool_source_up", source="down").value == 0


def test_scraping_without_a_token_is_refused(client, pool):
    pool.source("sales", {"sales": {"kpi": [KPI]}})
    answer = client.get("/metrics")
    assert answer.status_code == 401
    assert "sales" not in answer.get_data(as_text=True)


def test_a_token_in_another_dialects_place_is_refused(client, make_token):
    answer = client.get("/metrics", headers={"Token": make_token()})
    assert answer.status_code == 401


def test_an_empty_pool_scrapes_as_an_empty_text(scrape):
    assert scrape() == {}


def test_a_source_a_real_worker_collects_is_scraped_with_its_values(
    app, pg_cluster, worker, scrape
):
    with app.app_context():
        store.create(
            {
                "name": "live",
                "host": "127.0.0.1",
                "port": pg_cluster.port,
                "user": "postgres",
                "password": pg_cluster.password,
                "dbname": "postgres",
                "metrics": {"kpi": 2},
                "tags": {"env": "test"},
            }
        )
    families = wait_for(
        lambda: (found := scrape()) and "sentinel_pool_kpi_backends" in found and found,
        timeout=30,
        what="the first kpi sample of a source on the test cluster",
    )
    backends = only(families, "sentinel_pool_kpi_backends")
    assert backends.labels == {"source": "live", "dbname": "postgres", "env": "test"}
    assert backends.value >= 1  # the collector's own connection is a client backend
    assert families["sentinel_pool_kpi_xact_commit"].type == "counter"
    assert only(families, "sentinel_pool_source_up").value == 1
    assert only(families, "sentinel_pool_source_status").labels["status"] == "connected"
