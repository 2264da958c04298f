"""Maintenance insight: sizes and estimated bloat of databases, schemas, tables
and indexes, and how close each database is to transaction id wraparound.

Each answer reads the catalog in one pass per kind of object (tables,
indexes, column statistics), whatever the number of tables, and shapes it as
the temBoard agent does: byte counts beside pg_size_pretty-like strings, the
agent's floats where it gave floats.

Bloat is the estimate the PostgreSQL community uses: the pages a table (or
btree index) would need for its rows, from each column's average width and
null fraction in pg_stats, against the pages it has. It is None where the
statistics are missing (a table never analysed, or one this role may not
read in pg_stats).
"""

import functools
import math

from ... import samples
from ...errors import NotFound
from ...postgres import sql_folder

SQL = sql_folder(__file__)

PAGE_HEADER = 24  # PageHeaderData
BTREE_SPECIAL = 16  # BTPageOpaqueData, at the end of every btree page
ITEM_POINTER = 4  # ItemIdData, one per tuple on a page
HEAP_TUPLE_HEADER = 23  # HeapTupleHeaderData, before alignment
INDEX_TUPLE_HEADER = 8  # IndexTupleData
INDEX_NULL_BITMAP = 4  # INDEX_MAX_KEYS bits
MAXALIGN = 8


# The schema page of 10,000 tables writes 80,000 sizes, most of them repeated
# (empty forks, one-page tables): 0.14 s uncached, 0.03 s with the cache.
@functools.lru_cache(maxsize=4096)
def pretty_size(size):
    """Bytes as pg_size_pretty() writes them ("8192 bytes", "16 kB", "7605 kB"),
    or None for None."""
    if size is None:
        return None
    size = int(size)
    limit = 10 * 1024
    if abs(size) < limit:
        return f"{size} bytes"
    size = size >> 9  # in half kilobytes, rounded below as PostgreSQL does
    for unit in ("kB", "MB", "GB", "TB"):
        if abs(size) < limit * 2 - 1 or unit == "TB":
            return f"{(size + (1 if size >= 0 else -1)) // 2} {unit}"
        size = size >> 10
    raise AssertionError("unreachable")


def _align(length):
    return math.ceil(length / MAXALIGN) * MAXALIGN


def table_bloat(table, columns, block_size):
    """Estimated bytes of a table beyond what its rows need, or None."""
    stats = [columns.get((table["relid"], number)) for number in table["column_numbers"] or ()]
    if table["reltuples"] < 0 or not stats or None in stats:
        return None
    width = sum((1 - null_frac) * avg_width for null_frac, avg_width in stats)
    nulls = any(null_frac > 0 for null_frac, _ in stats)
    header = _align(HEAP_TUPLE_HEADER + (math.ceil(len(stats) / 8) if nulls else 0))
    room = (block_size - PAGE_HEADER) * table["fillfactor"] / 100
    per_page = max(math.floor(room / (header + _align(width) + ITEM_POINTER)), 1)
    needed = math.ceil(table["reltuples"] / per_page)
    return float(max(table["relpages"] - needed, 0) * block_size)


def index_bloat(index, columns, block_size):
    """Estimated bytes of a btree index beyond what its entries need, or None
    (other access methods, missing statistics)."""
    if index["type"] != "btree" or index["reltuples"] < 0:
        return None
    stats = [columns.get(key) for key in _stats_keys(index)]
    if not stats or None in stats:
        return None
    width = sum((1 - null_frac) * avg_width for null_frac, avg_width in stats)
    nulls = any(null_frac > 0 for null_frac, _ in stats)
    entry = _align(_align(INDEX_TUPLE_HEADER + (INDEX_NULL_BITMAP if nulls else 0)) + width)
    room = (block_size - PAGE_HEADER - BTREE_SPECIAL) * index["fillfactor"] / 100
    per_page = max(math.floor(room / (entry + ITEM_POINTER)), 1)
    needed = math.ceil(index["reltuples"] / per_page) + 1  # and the metapage
    return float(max(index["relpages"] - needed, 0) * block_size)


# -- reading the catalog ---------------------------------------------------------------


def _column_stats(conn, schema, names):
    """{(relation oid, attribute number): (null_frac, avg_width)} of a schema
    (or all), or of the relations `names`, as pg_stats shows them this role."""
    params = {"schema": schema, "names": names}
    if conn.queryscalar("SELECT has_table_privilege('pg_catalog.pg_statistic', 'SELECT')"):
        rows = conn.tuples_file(SQL / "column_stats_catalog.sql", params)
    elif names is not None:  # a few relations: the planner's index lookups are best
        rows = conn.tuples_file(SQL / "column_stats.sql", params)
    else:
        # pg_stats checks a column privilege per attribute; a nested loop over
        # pg_attribute makes that 8 calls per column. Hash joins read 10,000
        # tables' statistics in a third of the time.
        conn.execute("BEGIN")
        try:
            conn.execute("SET LOCAL enable_nestloop = off")
            rows = conn.tuples_file(SQL / "column_stats.sql", params)
        finally:
            conn.execute("COMMIT")
    return {(relid, attnum): (null_frac, width) for relid, attnum, null_frac, width in rows}


def _stats_keys(index):
    """Where each key column's statistics are, as (relation oid, attribute
    number): a plain column's under its table, an expression's under the
    index, at its position."""
    return [
        (index["indexrelid"], position) if number == 0 else (index["relid"], number)
        for position, number in enumerate(index["keys"], start=1)
    ]


def _relations(conn, schema_oid=None, schema=None, table=None):
    """(tables, indexes) of a schema (or of every schema, or one table), each
    with its bloat estimate; every table carries its indexes."""
    params = {"schema_oid": schema_oid, "table": table}
    block_size = int(conn.queryscalar("SELECT current_setting('block_size')"))
    # Sorted here, by name: 5 ms for 10,000 rows, where PostgreSQL's sort by
    # collation took 30 ms for the tables and spilled to disk for the indexes.
    tables = sorted(
        conn.query_file(SQL / "tables.sql", params),
        key=lambda table: (table["schema"], table["name"]),
    )
    indexes = sorted(
        conn.query_file(SQL / "indexes.sql", params),
        key=lambda index: (index["schema"], index["tablename"], index["name"]),
    )
    names = None
    if table is not None:
        names = [table, *{index["name"] for index in indexes}]
    columns = _column_stats(conn, schema, names)
    by_table = {}
    for index in indexes:
        index["bloat_bytes"] = index_bloat(index, columns, block_size)
        by_table.setdefault(index["relid"], []).append(index)
    for row in tables:
        row["indexes"] = by_table.get(row["relid"], [])
        row["bloat_bytes"] = table_bloat(row, columns, block_size)
    return tables, indexes


def _known_sum(values):
    known = [value for value in values if value is not None]
    return float(sum(known)) if known else None


def _index_answer(index):
    return {
        "bloat_bytes": index["bloat_bytes"],
        "bloat_size": pretty_size(index["bloat_bytes"]),
        "def": index["def"],
        "idx_tup_fetch": index["idx_tup_fetch"],
        "idx_tup_read": index["idx_tup_read"],
        "indexrelname": index["name"],
        "indisunique": index["indisunique"],
        "name": index["name"],
        "number_of_columns": index["number_of_columns"],
        "scans": index["scans"],
        "tablename": index["tablename"],
        "tablespace": index["tablespace"],
        "total_bytes": index["total_bytes"],
        "total_size": pretty_size(index["total_bytes"]),
        "type": index["type"],
    }


def _table_answer(table):
    index_bytes = sum(index["total_bytes"] for index in table["indexes"])
    index_bloat = _known_sum(index["bloat_bytes"] for index in table["indexes"])
    total = table["table_bytes"] + table["toast_bytes"] + index_bytes
    return {
        "bloat_bytes": table["bloat_bytes"],
        "bloat_size": pretty_size(table["bloat_bytes"]),
        "index_bloat_bytes": index_bloat,
        "index_bloat_size": pretty_size(index_bloat),
        "index_bytes": index_bytes,
        "index_size": pretty_size(index_bytes),
        "n_indexes": len(table["indexes"]),
        "name": table["name"],
        "row_estimate": max(table["reltuples"], 0.0),
        "table_bytes": table["table_bytes"],
        "table_size": pretty_size(table["table_bytes"]),
        "toast_bytes": table["toast_bytes"],
        "toast_size": pretty_size(table["toast_bytes"]),
        "total_bytes": total,
        "total_size": pretty_size(total),
    }


def _schema_oid(conn, dbname, schema):
    check_names(schema)
    oid = conn.queryscalar("SELECT oid FROM pg_namespace WHERE nspname = %s", (schema,))
    if oid is None:
        raise NotFound(f"Schema {schema} not found in database {dbname}")
    return oid


def _summary(tables):
    """Totals of a set of tables as the agent sums them for a schema or database."""
    indexes = [index for table in tables for index in table["indexes"]]
    figures = {
        "n_tables": len(tables),
        "n_indexes": len(indexes),
        "tables_bytes": sum(table["table_bytes"] for table in tables),
        "toast_bytes": sum(table["toast_bytes"] for table in tables),
        "indexes_bytes": sum(index["total_bytes"] for index in indexes),
        "tables_bloat_bytes": _known_sum(table["bloat_bytes"] for table in tables),
        "indexes_bloat_bytes": _known_sum(index["bloat_bytes"] for index in indexes),
    }
    figures["total_bytes"] = (
        figures["tables_bytes"] + figures["toast_bytes"] + figures["indexes_bytes"]
    )
    return figures


def _with_sizes(figures, floats=()):
    answer = {}
    for key, value in figures.items():
        answer[key] = float(value) if key in floats and value is not None else value
        if key.endswith("_bytes"):
            answer[key[: -len("_bytes")] + "_size"] = pretty_size(value)
    return answer


# -- the four insight answers ---------------------------------------------------------


def check_names(*names):
    """NotFound for a name no PostgreSQL object can have (a NUL character,
    which no query could even carry)."""
    for name in names:
        if name is not None and "\x00" in name:
            raise NotFound(f"No object is named {name!r}")


def check_database(pool, dbname):
    """NotFound unless `dbname` is a database Sentinel may connect to."""
    check_names(dbname)
    exists = pool.queryscalar(
        "SELECT true FROM pg_database WHERE datname = %s AND datallowconn AND NOT datistemplate",
        (dbname,),
    )
    if not exists:
        raise NotFound(f"Database {dbname} not found")


def database(pool, dbname):
    """GET /maintenance/<db>: every schema with its totals, and the database's."""
    check_database(pool, dbname)

    def read(conn):
        tables, _ = _relations(conn)
        size = conn.queryscalar("SELECT pg_database_size(current_database())")
        schemas = conn.query("SELECT nspname FROM pg_namespace ORDER BY nspname")
        return tables, size, [row["nspname"] for row in schemas]

    tables, size, names = pool.run(read, dbname)
    by_schema = {}
    for table in tables:
        by_schema.setdefault(table["schema"], []).append(table)
    schemas = []
    for name in names:
        if name == "pg_toast" or name.startswith(("pg_temp_", "pg_toast_temp_")):
            continue
        answer = _with_sizes(_summary(by_schema.get(name, [])), floats=("toast_bytes",))
        schemas.append({"name": name, **answer})
    return {"schemas": schemas, "total_bytes": size, "total_size": pretty_size(size)}


def schema(pool, dbname, schema_name):
    """GET /maintenance/<db>/schema/<schema>: its tables and all their indexes."""
    check_database(pool, dbname)

    def read(conn):
        oid = _schema_oid(conn, dbname, schema_name)
        return _relations(conn, oid, schema_name)

    tables, indexes = pool.run(read, dbname)
    answers = [_table_answer(table) for table in tables]
    total = sum(answer["total_bytes"] for answer in answers)
    return {
        "indexes": [_index_answer(index) for index in indexes],
        "size": pretty_size(total),
        "tables": answers,
        "total_bytes": total,
    }


def table(pool, dbname, schema_name, table_name):
    """GET .../table/<table>: its sizes, statistics, indexes and bloat."""
    check_database(pool, dbname)
    check_names(table_name)

    def read(conn):
        oid = _schema_oid(conn, dbname, schema_name)
        tables, indexes = _relations(conn, oid, schema_name, table_name)
        if not tables:
            raise NotFound(f"Table {schema_name}.{table_name} not found")
        stats = conn.queryone_file(SQL / "table_stats.sql", {"relid": tables[0]["relid"]})
        return tables[0], indexes, stats

    found, indexes, stats = pool.run(read, dbname)
    answer = _table_answer(found)
    answer.update(stats or {})
    answer.update(
        name=found["name"],
        relname=found["name"],
        schemaname=schema_name,
        relid=found["relid"],
        fillfactor=found["fillfactor"],
        indexes=[_index_answer(index) for index in indexes],
    )
    return answer


def instance(pool, store, identity):
    """GET /maintenance: every database with its totals and wraparound figures,
    and the instance's total."""
    rows = pool.run(lambda conn: conn.query_file(SQL / "databases.sql"))
    reading, rate = xid_reading(pool, store, identity)
    databases = []
    for row in rows:
        tables, _ = pool.run(_relations, row["datname"])
        figures = _summary(tables)
        figures["total_bytes"] = row["total_bytes"]
        floats = set(figures) - {"total_bytes"}
        answer = {"datname": row["datname"], **_with_sizes(figures, floats=floats)}
        answer["wraparound"] = wraparound(row, reading, rate)
        databases.append(answer)
    total = float(sum(row["total_bytes"] for row in rows))
    return {
        "databases": databases,
        "instance": {"total_bytes": total, "total_size": pretty_size(total)},
    }


def wraparound_only(pool, store, identity):
    """The wraparound figures of every database, without sizes (the home page's)."""
    rows = pool.run(lambda conn: conn.query_file(SQL / "databases.sql"))
    reading, rate = xid_reading(pool, store, identity)
    return [
        {
            "datname": row["datname"],
            "total_bytes": row["total_bytes"],
            **wraparound(row, reading, rate),
        }
        for row in rows
    ]


# -- transaction id wraparound --------------------------------------------------------

# PostgreSQL stops assigning transaction ids 3 million short of 2^31 behind
# the oldest unfrozen one; it shuts writes down there until a VACUUM.
XID_STOP_LIMIT = 2**31 - 3_000_000
KEEP_XID_SAMPLE_FOR = 10.0  # s: a rate over at least this long


def xid_reading(pool, store, identity):
    """The next transaction id now (no id consumed to read it), stored as the
    next baseline; returns (reading, transactions per second or None)."""
    reading = pool.run(lambda conn: conn.queryone_file(SQL / "xid.sql"))
    name = samples.key(identity, "maintenance", "xid")
    previous = store.get(name)
    current = {"at": reading["at"], "next_xid": reading["next_xid"]}
    store.put(name, current, replacing=previous, keep_for=KEEP_XID_SAMPLE_FOR)
    rate = None
    if previous and reading["at"] > previous["at"]:
        used = max(reading["next_xid"] - previous["next_xid"], 0)
        rate = used / (reading["at"] - previous["at"])
    return reading, rate


def wraparound(row, reading, rate):
    """How far a database is from the forced anti-wraparound vacuum and from
    the shutdown, in transaction ids and, at the measured rate, in seconds."""
    to_vacuum = reading["freeze_max_age"] - row["xid_age"]
    to_stop = XID_STOP_LIMIT - row["xid_age"]
    return {
        "xid_age": row["xid_age"],
        "mxid_age": row["mxid_age"],
        "autovacuum_freeze_max_age": reading["freeze_max_age"],
        "autovacuum_multixact_freeze_max_age": reading["multixact_freeze_max_age"],
        "xid_stop_limit": XID_STOP_LIMIT,
        "xids_to_forced_vacuum": to_vacuum,
        "xids_to_shutdown": to_stop,
        "xid_rate": rate,
        "seconds_to_forced_vacuum": (max(to_vacuum, 0) / rate) if rate else None,
        "seconds_to_shutdown": (max(to_stop, 0) / rate) if rate else None,
    }
