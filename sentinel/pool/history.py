"""What the pool's collection keeps: every run's rows per (source, database,
metric) for the retention period, and the last of each for /metrics.

A run is identified by the second it was due at (its `slot`), so the same
run written twice (a job retried after its worker died) is kept once: the
second write is ignored by the unique index, on SQLite and PostgreSQL state
alike. Rows are JSON lists of objects, as the metric's query returned them.
"""

import orjson
from peewee import EXCLUDED

from ..state import database
from .models import LatestSample, Sample


def record(source_id, dbname, slot, collected_at, results):
    """Keep one run's `results` ({metric: [row, ...]}) of a source's database.

    Returns how many metrics it wrote: 0 when that run was written already."""
    if not results:
        return 0
    rows = [
        {
            "source": source_id,
            "dbname": dbname,
            "metric": metric,
            "slot": slot,
            "collected_at": collected_at,
            "data": orjson.dumps(data).decode(),
        }
        for metric, data in results.items()
    ]
    with database.atomic():
        done = Sample.select().where(
            Sample.source == source_id, Sample.dbname == dbname, Sample.slot == slot
        )
        if done.exists():
            return 0
        # Ignored conflicts: a second writer of the same run racing this one.
        Sample.insert_many(rows).on_conflict_ignore().execute()
        (
            LatestSample.insert_many(rows)
            .on_conflict(
                conflict_target=[LatestSample.source, LatestSample.dbname, LatestSample.metric],
                update={
                    LatestSample.slot: EXCLUDED.slot,
                    LatestSample.collected_at: EXCLUDED.collected_at,
                    LatestSample.data: EXCLUDED.data,
                },
                # A late write of an older run never hides a newer one.
                where=(LatestSample.slot < EXCLUDED.slot),
            )
            .execute()
        )
    return len(rows)


def latest():
    """Every (source id, dbname, metric, slot, collected_at, rows as JSON text)
    last collected, in that order."""
    query = LatestSample.select(
        LatestSample.source,
        LatestSample.dbname,
        LatestSample.metric,
        LatestSample.slot,
        LatestSample.collected_at,
        LatestSample.data,
    ).order_by(LatestSample.source, LatestSample.dbname, LatestSample.metric)
    return list(query.tuples())


def series(source_id, dbname, metric, since, until):
    """[(slot, collected_at, rows)] of one metric between two epoch seconds,
    oldest first."""
    query = (
        Sample.select(Sample.slot, Sample.collected_at, Sample.data)
        .where(
            Sample.source == source_id,
            Sample.dbname == dbname,
            Sample.metric == metric,
            Sample.slot.between(since, until),
        )
        .order_by(Sample.slot)
    )
    return [(slot, at, orjson.loads(data)) for slot, at, data in query.tuples()]


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
