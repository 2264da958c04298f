"""The maintenance API against a real cluster: sizes and bloat of tables made
for the purpose, 404s and 406s, and identifiers that need quoting or mean harm."""

import re
import uuid

import pytest

from sentinel import create_app
from sentinel.plugins.maintenance import insight

HOSTILE_TABLE = "x; DROP TABLE victim"
QUOTED_TABLE = 'My "Table"'
SCHEMA_WITH_SPACE = "Odd Schema"


@pytest.fixture(scope="module")
def maint_db(pg_cluster):
    """A database of the module's own: a bloated table, an unanalysed one,
    hostile and quoted names. Dropped at the end."""
    name = f"maint_{uuid.uuid4().hex[:10]}"
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
        cur.execute(
            "CREATE TABLE tidy (id int PRIMARY KEY, v text) WITH (autovacuum_enabled = off)"
        )
        cur.execute("INSERT INTO tidy SELECT i, md5(i::text) FROM generate_series(1, 2000) i")
        cur.execute("CREATE INDEX tidy_lower ON tidy (lower(v))")
        cur.execute("ALTER TABLE tidy DROP COLUMN IF EXISTS nothing, ADD COLUMN gone int")
        cur.execute("ALTER TABLE tidy DROP COLUMN gone")
        cur.execute("VACUUM ANALYZE tidy")
        cur.execute("CREATE TABLE never_analysed (id int, v text)")
        cur.execute("CREATE INDEX never_analysed_v ON never_analysed (v)")
        cur.execute("CREATE TABLE victim (id int)")
        cur.execute(f'CREATE TABLE "{HOSTILE_TABLE}" (id int PRIMARY KEY)')
        cur.execute(f'CREATE SCHEMA "{SCHEMA_WITH_SPACE}"')
        quoted = QUOTED_TABLE.replace('"', '""')
        cur.execute(f'CREATE TABLE "{SCHEMA_WITH_SPACE}"."{quoted}" (id int PRIMARY KEY)')
    conn.close()
    yield name
    pg_cluster.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
    )
    pg_cluster.execute(f'DROP DATABASE IF EXISTS "{name}"')


@pytest.fixture
def headers(auth):
    return auth.headers()


def test_instance_lists_each_database_in_the_agents_shapes(client, headers, maint_db):
    answer = client.get("/maintenance", headers=headers).get_json()
    databases = {row["datname"]: row for row in answer["databases"]}
    assert maint_db in databases and "template0" not in databases
    mine = databases[maint_db]
    for key in ("n_tables", "n_indexes", "tables_bytes", "indexes_bytes", "toast_bytes"):
        assert isinstance(mine[key], float), key
    assert isinstance(mine["total_bytes"], int)
    assert mine["n_tables"] >= 5
    assert isinstance(answer["instance"]["total_bytes"], float)
    assert answer["instance"]["total_size"].endswith(("kB", "MB", "GB"))
    wrap = mine["wraparound"]
    assert wrap["xid_age"] >= 0 and wrap["xids_to_shutdown"] > wrap["xids_to_forced_vacuum"]


def test_wraparound_rate_comes_from_two_readings_without_consuming_an_xid(app, maint_db):
    from sentinel.extensions import postgres, redis

    with app.app_context():
        pool = postgres.pool
        before, _ = insight.xid_reading(pool, redis.samples, "test:1")
        again, _ = insight.xid_reading(pool, redis.samples, "test:1")
    # Reading the next id twice assigned none.
    assert again["next_xid"] == before["next_xid"]


def test_database_lists_its_schemas(client, headers, maint_db):
    answer = client.get(f"/maintenance/{maint_db}", headers=headers).get_json()
    schemas = {row["name"]: row for row in answer["schemas"]}
    assert {"public", "pg_catalog", SCHEMA_WITH_SPACE} <= set(schemas)
    assert schemas["public"]["n_tables"] == 5
    assert isinstance(answer["total_bytes"], int)


def test_schema_lists_every_index_analysed_or_not(client, headers, maint_db):
    answer = client.get(f"/maintenance/{maint_db}/schema/public", headers=headers).get_json()
    indexes = {row["name"]: row for row in answer["indexes"]}
    assert "never_analysed_v" in indexes
    assert indexes["never_analysed_v"]["tablename"] == "never_analysed"
    assert indexes["never_analysed_v"]["bloat_bytes"] is None  # no statistics to estimate from
    tables = {row["name"]: row for row in answer["tables"]}
    assert tables["never_analysed"]["n_indexes"] == 1
    assert tables["never_analysed"]["bloat_bytes"] is None
    assert set(tables) == {"bloated", "tidy", "never_analysed", "victim", HOSTILE_TABLE}


def test_a_bloated_table_shows_bloat_and_a_tidy_one_little(client, headers, maint_db):
    answer = client.get(f"/maintenance/{maint_db}/schema/public", headers=headers).get_json()
    tables = {row["name"]: row for row in answer["tables"]}
    bloated, tidy = tables["bloated"], tables["tidy"]
    # 90% of the rows deleted, never vacuumed: most of the table is dead space.
    assert bloated["bloat_bytes"] > 0.7 * bloated["table_bytes"]
    assert bloated["index_bloat_bytes"] > 0.5 * bloated["index_bytes"]
    assert tidy["bloat_bytes"] <= 0.2 * tidy["table_bytes"]
    assert bloated["bloat_size"].endswith(("kB", "bytes"))


def test_a_role_that_cannot_read_the_catalog_gets_the_same_estimates(
    client, headers, maint_db, pg_cluster, settings
):
    """A superuser's estimates come from pg_statistic; a plain monitoring role's
    from pg_stats, which shows it only the columns it may read."""
    role = f"maint_plain_{uuid.uuid4().hex[:6]}"
    pg_cluster.execute(f"CREATE ROLE {role} LOGIN PASSWORD 'plain-password'")
    conn = pg_cluster.connect(maint_db)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}")
        cur.execute(f"REVOKE SELECT ON tidy FROM {role}")
    conn.close()
    dsn = pg_cluster.dsn().replace("user=postgres", f"user={role}")
    dsn = re.sub(r"password=\S+", "password=plain-password", dsn)
    app = create_app({**settings, "pg_dsn": dsn})
    try:
        path = f"/maintenance/{maint_db}/schema/public"
        theirs = app.test_client().get(path, headers=headers).get_json()
        ours = client.get(path, headers=headers).get_json()

        def bloat(answer):
            return {row["name"]: row["bloat_bytes"] for row in answer["tables"] + answer["indexes"]}

        expected = bloat(ours)
        # What the role may not read is not estimated for it.
        for hidden in ("tidy", "tidy_pkey", "tidy_lower"):
            assert expected[hidden] is not None
            expected[hidden] = None
        assert bloat(theirs) == expected
        assert expected["bloated"] > 0 and expected["bloated_pkey"] > 0
    finally:
        app.extensions["sentinel.postgres"].close()
        pg_cluster.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (role,)
        )
        conn = pg_cluster.connect(maint_db)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f"DROP OWNED BY {role}")
        conn.close()
        pg_cluster.execute(f"DROP ROLE {role}")


def test_table_answers_its_statistics_and_indexes(client, headers, maint_db):
    answer = client.get(
        f"/maintenance/{maint_db}/schema/public/table/tidy", headers=headers
    ).get_json()
    assert answer["name"] == answer["relname"] == "tidy"
    assert isinstance(answer["relid"], int)
    assert answer["n_live_tup"] > 0 and answer["row_estimate"] == 2000.0
    assert answer["analyze_count"] == 1 and answer["last_analyze"]
    indexes = {index["name"]: index for index in answer["indexes"]}
    assert sorted(indexes) == ["tidy_lower", "tidy_pkey"]
    # An expression's statistics are found under the index, past a dropped column.
    assert indexes["tidy_lower"]["bloat_bytes"] is not None
    assert answer["bloat_bytes"] is not None
    assert answer["fillfactor"] == 100


def test_names_that_need_quoting_are_read(client, headers, maint_db):
    path = f"/maintenance/{maint_db}/schema/{SCHEMA_WITH_SPACE}/table/{QUOTED_TABLE}"
    answer = client.get(path, headers=headers)
    assert answer.status_code == 200
    assert answer.get_json()["indexes"][0]["tablename"] == QUOTED_TABLE


@pytest.mark.parametrize(
    "path, message",
    [
        ("/maintenance/nodb", "Database nodb not found"),
        ("/maintenance/{db}/schema/noschema", "Schema noschema not found in database {db}"),
        ("/maintenance/{db}/schema/public/table/notable", "Table public.notable not found"),
        ("/maintenance/template0", "Database template0 not found"),
    ],
)
def test_unknown_objects_are_404_with_a_clear_message(client, headers, maint_db, path, message):
    answer = client.get(path.format(db=maint_db), headers=headers)
    assert answer.status_code == 404
    assert answer.get_json() == {"error": message.format(db=maint_db)}


@pytest.mark.parametrize(
    "path, message",
    [
        ("/maintenance/nodb/vacuum", "Database nodb not found"),
        ("/maintenance/{db}/schema/public/table/notable/analyze", "Table public.notable not found"),
        ("/maintenance/{db}/schema/public/index/noidx/reindex", "Index public.noidx not found"),
        ("/maintenance/{db}/schema/public/index/tidy/reindex", "Index public.tidy not found"),
    ],
)
def test_operations_on_unknown_objects_are_404(client, headers, maint_db, path, message):
    answer = client.post(path.format(db=maint_db), headers=headers, json={})
    assert answer.status_code == 404
    assert answer.get_json() == {"error": message.format(db=maint_db)}


@pytest.mark.parametrize(
    "body, name",
    [
        ({"datetime": "tomorrow"}, "datetime"),
        ({"datetime": "x"}, "datetime"),
        ({"datetime": "2019-03-22T12:24:39"}, "datetime"),
        ({"datetime": "2019-02-30T12:24:39Z"}, "datetime"),
        ({"datetime": 1553257479}, "datetime"),
        ({"mode": "fast"}, "mode"),
        ({"mode": "full,full"}, "mode"),
        ({"mode": "full analyze"}, "mode"),
        ({"mode": ["full"]}, "mode"),
    ],
)
def test_malformed_parameters_are_406_in_the_agents_words(client, headers, maint_db, body, name):
    answer = client.post(
        f"/maintenance/{maint_db}/schema/public/table/tidy/vacuum", headers=headers, json=body
    )
    assert answer.status_code == 406
    assert answer.get_json() == {"error": f"Parameter '{name}' is malformed."}


def test_a_viewer_may_read_but_not_ask(client, auth, maint_db):
    viewer = {"X-Session": auth.login("vera", "vera-password", role="viewer")}
    assert client.get(f"/maintenance/{maint_db}", headers=viewer).status_code == 200
    answer = client.post(f"/maintenance/{maint_db}/vacuum", headers=viewer, json={})
    assert answer.status_code == 403


def test_the_bloat_estimate_needs_every_column_statistic():
    table = {
        "relid": 16384,
        "column_numbers": [1, 3],  # column 2 was dropped
        "reltuples": 100.0,
        "relpages": 10,
        "fillfactor": 100,
    }
    assert insight.table_bloat(table, {(16384, 1): (0.0, 4)}, 8192) is None
    columns = {(16384, 1): (0.0, 4), (16384, 3): (0.0, 33)}
    # 100 rows of 72 bytes fit one page: 9 of the 10 are bloat.
    assert insight.table_bloat(table, columns, 8192) == 9 * 8192.0


@pytest.mark.parametrize(
    "size, text",
    [(0, "0 bytes"), (10239, "10239 bytes"), (10240, "10 kB"), (7788007, "7605 kB"), (None, None)],
)
def test_sizes_read_as_pg_size_pretty_writes_them(size, text):
    assert insight.pretty_size(size) == text


def test_sizes_match_pg_size_pretty(pg_cluster):
    sizes = [0, 1, 10239, 10240, 20479 * 512, 20480 * 512, 10**9, 3 * 10**12, 7788007]
    conn = pg_cluster.connect("postgres")
    try:
        with conn.cursor() as cur:
            for size in sizes:
                cur.execute("SELECT pg_size_pretty(%s::bigint)", (size,))
                assert insight.pretty_size(size) == cur.fetchone()[0], size
    finally:
        conn.close()


@pytest.mark.parametrize(
    "fields, expected",
    [
        (
            {"operation": "analyze", "schema_name": "public", "table_name": HOSTILE_TABLE},
            'ANALYZE VERBOSE "public"."x; DROP TABLE victim"',
        ),
        (
            {
                "operation": "vacuum",
                "mode": "full,analyze",
                "schema_name": "S",
                "table_name": 'a"b',
            },
            'VACUUM (FULL, ANALYZE, VERBOSE) "S"."a""b"',
        ),
        ({"operation": "reindex", "dbname": "my db"}, 'REINDEX (VERBOSE) DATABASE "my db"'),
        (
            {"operation": "reindex", "schema_name": "public", "index_name": "i x"},
            'REINDEX (VERBOSE) INDEX "public"."i x"',
        ),
    ],
)
def test_names_reach_postgresql_only_as_identifiers(pg_cluster, fields, expected):
    from sentinel.plugins.maintenance import operations
    from sentinel.plugins.maintenance.models import MaintenanceJob

    conn = pg_cluster.connect("postgres")
    try:
        text = operations.statement(MaintenanceJob(**{"dbname": "d", **fields})).as_string(conn)
    finally:
        conn.close()
    assert text == expected
