"""The metric catalog: every metric's SQL runs on the real cluster, the version
rule, the presets, and the pgwatch shapes."""

import copy
import re

import pytest

from sentinel.errors import NotFound
from sentinel.pool import catalog

METRICS = catalog.metric_names()


@pytest.fixture(scope="module")
def monitored(pg_cluster):
    """A superuser connection to the test cluster, as collection would hold one."""
    conn = pg_cluster.connect("postgres")
    conn.autocommit = False
    yield conn
    conn.close()


def run_in_rolled_back_transaction(conn, sql):
    """Run a metric's SQL beside a few objects of each kind it reports on, all
    rolled back, under the timeout collection uses."""
    try:
        with conn.cursor() as cursor:
            cursor.execute("SET LOCAL statement_timeout = '2s'")
            cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            cursor.execute(
                "CREATE TABLE catalog_probe (id bigserial PRIMARY KEY, v text);"
                "CREATE INDEX ON catalog_probe (v);"
                "INSERT INTO catalog_probe (v) SELECT g::text FROM generate_series(1, 100) g;"
                "CREATE FUNCTION catalog_probe_f() RETURNS int LANGUAGE sql AS 'SELECT 1';"
                "SELECT catalog_probe_f()"
            )
            cursor.execute(sql)
            columns = [d.name for d in cursor.description]
            return columns, cursor.fetchall()
    finally:
        conn.rollback()


def test_the_catalog_ships_at_least_30_metrics():
    assert len(METRICS) >= 30


@pytest.mark.parametrize("name", METRICS)
def test_every_metric_runs_on_the_cluster_and_returns_its_gauges(monitored, name):
    major = monitored.server_version // 10000
    sql = catalog.sql_for(name, major)
    assert sql is not None, f"{name} has no SQL for PostgreSQL {major}"
    columns, rows = run_in_rolled_back_transaction(monitored, sql)
    assert set(catalog.metric(name)["gauges"]) <= set(columns)
    assert len(columns) == len(set(columns)), f"{name} repeats a column: {columns}"
    if name in ("instance_up", "kpi", "connections", "recovery", "checkpoints", "wal"):
        assert len(rows) == 1


def test_one_row_metrics_report_what_the_cluster_is(monitored):
    columns, rows = run_in_rolled_back_transaction(monitored, catalog.sql_for("kpi", 15))
    kpi = dict(zip(columns, rows[0], strict=True))
    assert kpi["backends"] >= 1 and kpi["in_recovery"] == 0 and kpi["uptime_seconds"] >= 0
    columns, rows = run_in_rolled_back_transaction(monitored, catalog.sql_for("table_stats", 15))
    assert "catalog_probe" in [dict(zip(columns, row, strict=True))["relname"] for row in rows]


@pytest.mark.parametrize(
    "name, major, key",
    [
        ("stat_statements", 13, "13"),  # exact key
        ("stat_statements", 16, "13"),  # greatest key below
        ("stat_statements", 12, "10"),
        ("checkpoints", 17, "17"),
        ("checkpoints", 18, "17"),
        ("checkpoints", 16, "10"),
        ("wal", 14, "14"),
        ("wal", 13, "10"),
    ],
)
def test_sql_for_takes_the_exact_version_or_the_greatest_below(name, major, key):
    assert catalog.sql_for(name, major) == catalog.metric(name)["sql"][key]


def test_sql_for_is_none_below_every_version():
    assert catalog.sql_for("instance_up", 9) is None
    assert catalog.sql_for("stat_statements", 1) is None


def test_an_unknown_metric_is_not_found():
    with pytest.raises(NotFound):
        catalog.sql_for("no_such_metric", 15)


def test_every_sql_key_is_an_integer_major_version():
    for name in METRICS:
        assert all(key == str(int(key)) for key in catalog.metric(name)["sql"]), name


def test_presets_name_only_catalog_metrics():
    for name, preset in catalog.pgwatch_presets().items():
        assert set(preset["Metrics"]) <= set(METRICS), name


def test_minimal_is_instance_up_and_kpi_every_minute():
    assert catalog.preset("minimal") == {"instance_up": 60, "kpi": 60}


def test_each_larger_preset_holds_the_smaller_and_exhaustive_holds_all():
    minimal, basic, standard, exhaustive = (
        set(catalog.preset(name)) for name in ("minimal", "basic", "standard", "exhaustive")
    )
    assert minimal < basic < standard < exhaustive == set(METRICS)


def test_datasentinel_collection_rates_map_to_presets():
    assert catalog.preset_for_collection_rate("low") == "standard"
    assert catalog.preset_for_collection_rate("high") == "exhaustive"
    with pytest.raises(NotFound):
        catalog.preset_for_collection_rate("medium")


def test_pgwatch_metric_shape_uses_go_field_names():
    served = catalog.pgwatch_metrics()
    assert set(served) == set(METRICS)
    stat_statements = served["stat_statements"]
    assert set(stat_statements) == {
        "SQLs",
        "InitSQL",
        "NodeStatus",
        "Gauges",
        "IsInstanceLevel",
        "StorageName",
        "Description",
    }
    assert set(stat_statements["SQLs"]) == {"10", "13"}
    assert stat_statements["IsInstanceLevel"] is False
    assert served["replication"]["NodeStatus"] == "primary"
    assert served["kpi"]["NodeStatus"] == ""


def test_pgwatch_preset_shape():
    assert catalog.pgwatch_presets()["minimal"] == {
        "Description": catalog.catalog()["presets"]["minimal"]["description"],
        "Metrics": {"instance_up": 60, "kpi": 60},
    }


def broken(change):
    data = copy.deepcopy(catalog.catalog())
    change(data)
    return data


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d: d["presets"]["minimal"]["metrics"].update(nope=60), "unknown metric nope"),
        (lambda d: d["presets"]["minimal"]["metrics"].update(kpi=0), "positive integer"),
        (lambda d: d["metrics"]["kpi"]["sql"].update({"9.6": "SELECT 1"}), "'9.6'"),
        (lambda d: d["metrics"]["kpi"]["sql"].update({"010": "SELECT 1"}), "'010'"),
        (lambda d: d["metrics"]["kpi"].update(sql={}), "no SQL"),
        (lambda d: d["metrics"]["kpi"].update(node_status="master"), "node_status"),
        (lambda d: d["metrics"]["kpi"].pop("gauges"), "missing ['gauges']"),
        (lambda d: d["metrics"]["kpi"].update(requires="pg_monitor"), "requires"),
        (lambda d: d["collection_rates"].update(low="nope"), "unknown preset"),
    ],
)
def test_check_refuses_a_broken_catalog(change, message):
    with pytest.raises(catalog.CatalogError, match=re.escape(message)):
        catalog.check(broken(change))
