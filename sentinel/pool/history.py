"""What the pool's collection keeps: every run's rows per (source, database,
metric) for the retention period, and the last of each for /metrics.

A run is identified by the second it was due at (its `slot`), so the same
run written twice (a job retried after its worker died) is kept once: the
second write is ignored by the unique index, on SQLite and PostgreSQL state
alike. Rows are JSON lists of objects, as the metric's query returned them.
"""

import functools
import math

import orjson

from ..state import database
from .exposition import sample_lines
from .models import LatestSample, Sample

COLUMNS = ("source_id", "dbname", "metric", "slot", "collected_at", "data")
# The latest sample also keeps its lines in the text exposition format, so
# that a scrape of GET /metrics neither parses rows nor writes numbers.
LATEST_COLUMNS = (*COLUMNS, "lines")


# Rows a statement of record() writes at most: SQLite allowed 999 parameters
# a statement before 3.32, and a row of the latest sample has 7.
ROWS_A_STATEMENT = 100


@functools.cache
def _statements(param, count):
    """The two statements of record() for `count` rows, in the driver's
    parameter style; valid on SQLite (3.24 and later) and PostgreSQL alike."""
    row = "(" + ", ".join([param] * len(COLUMNS)) + ")"
    latest_row = "(" + ", ".join([param] * len(LATEST_COLUMNS)) + ")"
    # Ignored conflicts: the same run written before, or by a second writer
    # racing this one.
    samples = (
        f"INSERT INTO pool_sample ({', '.join(COLUMNS)}) VALUES {', '.join([row] * count)}"
        " ON CONFLICT DO NOTHING"
    )
    latest = (
        f"INSERT INTO pool_latest_sample ({', '.join(LATEST_COLUMNS)})"
        f" VALUES {', '.join([latest_row] * count)}"
        " ON CONFLICT (source_id, dbname, metric) DO UPDATE SET slot = excluded.slot,"
        " collected_at = excluded.collected_at, data = excluded.data, lines = excluded.lines"
        # A late write of an older run never hides a newer one.
        " WHERE pool_latest_sample.slot < excluded.slot"
    )
    return samples, latest


def record(source_id, dbname, slot, collected_at, results):
    """Keep one run's `results` ({metric: [row, ...]}) of a source's database.

    Returns how many metrics it wrote: 0 when that run was written already.
    One statement of many rows for the samples, one for the latest ones,
    through the cursor: with peewee's insert_many a run of 20 metrics took
    4.8 ms of CPU to write. The cursor's executemany is a round trip a row
    on PostgreSQL: 3.4 ms a run under cProfile (the lines aside), where
    these two statements take 1.2 ms.

    Each metric's lines for GET /metrics are written here, once a run
    (exposition.sample_lines): 1.2 s more CPU over the bench's 1,000 runs of
    the standard preset (654,100 values), 1.8 ms per 1,000 values, where a
    scrape would otherwise write them again every 15 to 60 seconds."""
    if not results:
        return 0
    rows = [
        (source_id, dbname, metric, slot, collected_at, orjson.dumps(data).decode())
        for metric, data in results.items()
    ]
    latest_rows = [
        (*row, sample_lines(row[2], data)) for row, data in zip(rows, results.values(), strict=True)
    ]
    with database.atomic():
        cursor = database.cursor()
        if not _insert(cursor, 0, rows):
            return 0  # that run was written already: its latest samples too
        _insert(cursor, 1, latest_rows)
    return len(rows)


def _insert(cursor, which, rows):
    """Run statement `which` of _statements() over `rows`, ROWS_A_STATEMENT at
    a time; returns how many rows it inserted or updated."""
    done = 0
    for start in range(0, len(rows), ROWS_A_STATEMENT):
        part = rows[start : start + ROWS_A_STATEMENT]
        statement = _statements(database.param, len(part))[which]
        cursor.execute(statement, [value for row in part for value in row])
        done += cursor.rowcount
    return done


def latest(lines=False):
    """Every (source id, dbname, metric, slot, collected_at, rows as JSON text)
    last collected, in that order.

    With `lines`, every (source id, dbname, metric, lines, rows as JSON text)
    instead, for GET /metrics: the rows only where the lines are null (a
    sample written before they were kept), else None, as a scrape needs no
    more.

    Plain SQL through the cursor: peewee's conversion of every value took
    150 ms of this read's 260 at 26,000 samples."""
    if lines:
        columns = "source_id, dbname, metric, lines, CASE WHEN lines IS NULL THEN data END"
    else:
        columns = ", ".join(COLUMNS)
    cursor = database.execute_sql(
        f"SELECT {columns} FROM pool_latest_sample ORDER BY source_id, dbname, metric"
    )
    return cursor.fetchall()


def series(source_id, dbname, metric, since, until, every=None, most=None):
    """[(slot, collected_at, rows)] of one metric between two epoch seconds,
    oldest first.

    With `most` and the metric's interval `every` (s): when the range holds
    more runs than `most`, only those whose slot is a multiple of the
    smallest number of intervals that brings them under it (a counter's rate
    over those is still exact; a gauge's peaks between them are not read)."""
    in_range = (
        Sample.source == source_id,
        Sample.dbname == dbname,
        Sample.metric == metric,
        Sample.slot.between(since, until),
    )
    query = Sample.select(Sample.slot, Sample.collected_at, Sample.data).where(*in_range)
    if most and every:
        runs = Sample.select().where(*in_range).count()
        if runs > most:
            step = math.ceil(runs / most) * every
            # A multiple of step: integer division in SQLite and PostgreSQL alike
            # (peewee's % is LIKE, and psycopg2 would take a % for a parameter).
            query = query.where(Sample.slot / step * step == Sample.slot)
    rows = query.order_by(Sample.slot).tuples()
    return [(slot, at, orjson.loads(data)) for slot, at, data in rows]


def metrics_of(source_id):
    """{dbname: [metric, ...]} that have a last sample for a source."""
    found = {}
    query = (
        LatestSample.select(LatestSample.dbname, LatestSample.metric)
        .where(LatestSample.source == source_id)
        .order_by(LatestSample.dbname, LatestSample.metric)
    )
    for dbname, metric in query.tuples():
        found.setdefault(dbname, []).append(metric)
    return found


def purge(before):
    """Delete the samples of runs due before `before` (epoch seconds); returns how many."""
    return Sample.delete().where(Sample.slot < before).execute()
