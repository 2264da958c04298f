"""pg_stat_statements: its entries read live (GET /statements), and the
collector's snapshots kept as deltas over time (GET /statements/history).

The live read streams: PostgreSQL writes each entry as JSON, fetched through
a server-side cursor a batch at a time, so 5,000 statements never sit whole
in Sentinel's memory.

A snapshot reads the counters only (`pg_stat_statements(false)`), compares
each statement with its baseline (the counters read last time), and stores
the increase of those that moved. A statement seen for the first time has its
text read then, once (texts.sql), and stored with it. Counters going down
mean the entry was reset, or evicted and made again: what it holds now is
then all that happened since, and so is the delta; a reset of the whole view
(pg_stat_statements_info.stats_reset, PostgreSQL 14+) does so for every
statement. A statement that disappears (evicted) gets nothing and loses its
baseline: if it comes back, all its counters are new; its text stays while
kept snapshots name it. The history is bounded by age (statements_retention) and by an
estimate of its size (statements_budget), the oldest snapshots going first.
"""

import contextlib
import datetime
import logging
from dataclasses import dataclass

import peewee
import psycopg2.errors
from psycopg2 import sql

from ... import state
from ...errors import Invalid, Malformed, NotFound
from ...postgres import sql_folder
from .models import (
    COUNTERS,
    TIMES,
    Statement,
    StatementBaseline,
    StatementDelta,
    StatementSnapshot,
)

logger = logging.getLogger(__name__)

SQL = sql_folder(__file__)
AGENT_STAMP = "%Y-%m-%d %H:%M:%S +0000"
MOMENT = "%Y-%m-%dT%H:%M:%SZ"
BATCH = 1000  # entries fetched from PostgreSQL at a time
CHUNK = 400  # rows per INSERT (21 values each: far below SQLite's 32,766 variables)
KEY = ("queryid", "dbid", "userid", "toplevel")


@dataclass(frozen=True)
class RowBytes:
    """Bytes a row of each table takes in the state database, its indexes
    included, as measured with 5,000 statements (SQLite's dbstat,
    PostgreSQL's pg_total_relation_size; bench/statements.py prints the
    estimate beside SQLite's real growth). A statement's text comes on top."""

    delta: int
    baseline: int
    statement: int
    snapshot: int


# PostgreSQL's rows carry a 24-byte header and 8-byte alignment, and the
# baselines, updated in place, keep dead versions until vacuumed.
ROW_BYTES = {
    "sqlite": RowBytes(delta=70, baseline=50, statement=100, snapshot=100),
    "postgresql": RowBytes(delta=220, baseline=600, statement=150, snapshot=200),
}
MB = 1_000_000

MISSING = (psycopg2.errors.UndefinedTable, psycopg2.errors.UndefinedFunction)
NOT_LOADED = psycopg2.errors.ObjectNotInPrerequisiteState


def _unavailable(exc, dbname):
    """NotFound for a pg_stat_statements that cannot be read."""
    if isinstance(exc, NOT_LOADED):
        return NotFound(
            f"pg_stat_statements is not loaded: add it to shared_preload_libraries"
            f" and restart PostgreSQL ({str(exc).strip().splitlines()[0]})"
        )
    return NotFound(f"pg_stat_statements not enabled on database {dbname}")


def agent_stamp(moment=None):
    moment = moment or datetime.datetime.now(datetime.UTC)
    return moment.strftime(AGENT_STAMP)


@contextlib.contextmanager
def transaction(conn):
    """A transaction on a pooled (autocommit) connection, for a server-side
    cursor: committed, or rolled back on error; autocommit again after."""
    conn.raw.autocommit = False
    try:
        with conn.raw:
            yield
    finally:
        if not conn.raw.closed:
            conn.raw.autocommit = True


# -- now -------------------------------------------------------------------------------


def live_query(conn):
    """statements.sql with the view's columns as installed, oids as numbers."""
    columns = [
        sql.SQL("s.{0}::bigint AS {0}" if column["is_oid"] else "s.{0}").format(
            sql.Identifier(column["name"])
        )
        for column in conn.query(conn.sql(SQL / "columns.sql"))
    ]
    return sql.SQL(conn.sql(SQL / "statements.sql")).format(columns=sql.SQL(", ").join(columns))


def _entries(pg, batch):
    """Generator: first None once the query runs (its errors raised by then),
    then the JSON texts of the entries, a batch joined by commas at a time.
    The connection is held until it is exhausted or closed."""
    with pg.connection() as conn, transaction(conn):
        cursor = conn.raw.cursor(name="sentinel_statements")
        try:
            cursor.execute(live_query(conn))
            rows = cursor.fetchmany(batch)
        except (*MISSING, NOT_LOADED) as exc:
            raise _unavailable(exc, pg.dbname) from None
        yield None
        while rows:
            yield ",".join(row[0] for row in rows)
            rows = cursor.fetchmany(batch)


def latest(pg, batch=BATCH):
    """GET /statements: the parts of its JSON answer, to be sent as they come.

    NotFound (extension missing or not loaded) and PostgreSQL's errors are
    raised by this call, before any part exists.
    """
    entries = _entries(pg, batch)
    next(entries)
    return _answer(agent_stamp(), entries)


def _answer(stamp, entries):
    try:
        yield f'{{"snapshot_datetime":"{stamp}","data":['
        separator = ""
        for part in entries:
            yield separator + part
            separator = ","
        yield "]}"
    finally:
        entries.close()


def since_reset(pg):
    """The Statements page's rows since the last reset, read now."""
    try:
        rows = pg.run(lambda conn: conn.query(conn.sql(SQL / "since_reset.sql")))
    except (*MISSING, NOT_LOADED) as exc:
        raise _unavailable(exc, pg.dbname) from None
    return [_page_row(row) for row in rows]


# -- the collector -------------------------------------------------------------------------


def _utc(moment):
    """A timestamptz from psycopg2 as naive UTC, as the state stores times."""
    if moment is None:
        return None
    return moment.astimezone(datetime.UTC).replace(tzinfo=None)


class Snapshot:
    """A snapshot while it is stored: the statements seen so far, those
    waiting for their text, and its counts."""

    def __init__(self, record, reset):
        self.record = record
        self.reset = reset
        self.present = set()  # ids of the statements pg_stat_statements holds
        self.waiting = []  # entries of statements seen for the first time
        self.statements = self.moved = self.new = 0


def _known(batch):
    """{key: (statement id, baseline counters or None)} of the batch's
    statements already kept (without a baseline: evicted since)."""
    queryids = list({row[0] for row in batch})
    fields = [getattr(StatementBaseline, name) for name in COUNTERS]
    query = (
        Statement.select(
            Statement.id,
            Statement.queryid,
            Statement.dbid,
            Statement.userid,
            Statement.toplevel,
            *fields,
        )
        .join(StatementBaseline, peewee.JOIN.LEFT_OUTER)
        .where(Statement.queryid.in_(queryids))
        .tuples()
    )
    return {tuple(row[1:5]): (row[0], None if row[5] is None else tuple(row[5:])) for row in query}


def _delta(values, baseline, reset):
    """The increase since the baseline; all of `values` when the entry was
    reset (or evicted and made again) meanwhile: its counters went down."""
    if baseline is None or reset or any(v < b for v, b in zip(values, baseline, strict=True)):
        return values
    return tuple(v - b for v, b in zip(values, baseline, strict=True))


def _write(snap, deltas, baselines):
    """Insert the delta rows and update (or create) the baselines, in chunks
    (rows as tuples in the fields' order: peewee builds them faster than dicts)."""
    counters = [getattr(StatementDelta, name) for name in COUNTERS]
    fields = [StatementDelta.snapshot, StatementDelta.statement, *counters]
    rows = [(snap.record.id, statement_id, *values) for statement_id, values in deltas]
    for chunk in peewee.chunked(rows, CHUNK):
        StatementDelta.insert_many(chunk, fields=fields).execute()
    counters = [getattr(StatementBaseline, name) for name in COUNTERS]
    fields = [StatementBaseline.statement, *counters]
    rows = [(statement_id, *values) for statement_id, values in baselines]
    for chunk in peewee.chunked(rows, CHUNK):
        StatementBaseline.insert_many(chunk, fields=fields).on_conflict(
            conflict_target=[StatementBaseline.statement], preserve=counters
        ).execute()
    snap.moved += len(deltas)


def _compare(snap, batch):
    """Deltas of the batch's known statements; new ones wait for their text."""
    known = _known(batch)
    deltas, baselines = [], []
    for row in batch:
        key, values = tuple(row[:4]), tuple(row[4:])
        found = known.get(key)
        if found is None:
            snap.waiting.append(row)
            continue
        statement_id, baseline = found
        snap.present.add(statement_id)
        if values == baseline:
            continue  # nothing ran: nothing stored
        delta = _delta(values, baseline, snap.reset)
        if any(delta):
            deltas.append((statement_id, delta))
        baselines.append((statement_id, values))
    _write(snap, deltas, baselines)


def _add_new(conn, snap, first, now):
    """Store the waiting statements with their text, read now, once; their
    counters are a delta unless this is the first snapshot (which has nothing
    to measure from)."""
    waiting, snap.waiting = snap.waiting, []
    queryids = list({row[0] for row in waiting})
    texts = {
        (row["queryid"], row["dbid"], row["userid"], row["toplevel"]): row
        for row in conn.query(conn.sql(SQL / "texts.sql"), {"queryids": queryids})
    }
    rows = []
    for entry in waiting:
        text = texts.get(tuple(entry[:4]))
        if text is None:
            continue  # evicted since the counters were read: seen as new next time
        query = text["query"] or ""
        rows.append(
            {
                **dict(zip(KEY, entry[:4], strict=True)),
                "datname": text["datname"],
                "rolname": text["rolname"],
                "query": query,
                "first_seen": now,
                "bytes": len(query.encode()),
            }
        )
    for chunk in peewee.chunked(rows, CHUNK):
        Statement.insert_many(chunk).on_conflict_ignore().execute()
    ids = _ids(waiting)
    deltas, baselines = [], []
    for entry in waiting:
        statement_id = ids.get(tuple(entry[:4]))
        if statement_id is None:
            continue
        values = tuple(entry[4:])
        snap.present.add(statement_id)
        baselines.append((statement_id, values))
        if not first and any(values):
            deltas.append((statement_id, values))
    snap.new += len(baselines)
    _write(snap, deltas, baselines)


def _ids(entries):
    """{key: statement id} of the entries' statements kept."""
    queryids = list({row[0] for row in entries})
    query = (
        Statement.select(
            Statement.id, Statement.queryid, Statement.dbid, Statement.userid, Statement.toplevel
        )
        .where(Statement.queryid.in_(queryids))
        .tuples()
    )
    return {tuple(row[1:]): row[0] for row in query}


def _forget_absent(present):
    """Statements pg_stat_statements no longer holds (evicted, or reset) lose
    their baseline: if they come back, all their counters are new. Those no
    kept snapshot names either are dropped: nothing is left to say of them."""
    with_baseline = StatementBaseline.select(StatementBaseline.statement).tuples()
    gone = [statement_id for (statement_id,) in with_baseline if statement_id not in present]
    for chunk in peewee.chunked(gone, CHUNK):
        StatementBaseline.delete().where(StatementBaseline.statement.in_(chunk)).execute()
    baseline = StatementBaseline.select().where(StatementBaseline.statement == Statement.id)
    delta = StatementDelta.select().where(StatementDelta.statement == Statement.id)
    return (
        Statement.delete().where(~peewee.fn.EXISTS(baseline) & ~peewee.fn.EXISTS(delta)).execute()
    )


def snapshot(pg, now=None, batch=BATCH):
    """Read pg_stat_statements and store the deltas of the statements that
    moved since the previous snapshot; returns the snapshot's record."""
    now = now or state.utcnow()
    with pg.connection() as conn:
        try:
            stats_reset = _utc(conn.queryone(conn.sql(SQL / "info.sql"))["stats_reset"])
        except (*MISSING, NOT_LOADED) as exc:
            raise _unavailable(exc, pg.dbname) from None
        previous = (
            StatementSnapshot.select()
            .order_by(StatementSnapshot.taken_at.desc(), StatementSnapshot.id.desc())
            .first()
        )
        first = previous is None
        reset = (
            not first
            and stats_reset is not None
            and previous.stats_reset is not None
            and stats_reset != previous.stats_reset
        )
        with transaction(conn), state.database.atomic():
            cursor = conn.raw.cursor(name="sentinel_statements_counters")
            cursor.execute(conn.sql(SQL / "counters.sql"))
            record = StatementSnapshot.create(
                taken_at=now, stats_reset=stats_reset, statements=0, moved=0, new=0
            )
            snap = Snapshot(record, reset)
            while rows := cursor.fetchmany(batch):
                snap.statements += len(rows)
                _compare(snap, rows)
                if len(snap.waiting) >= batch:
                    _add_new(conn, snap, first, now)
            if snap.waiting:
                _add_new(conn, snap, first, now)
            record.statements, record.moved, record.new = snap.statements, snap.moved, snap.new
            record.save()
            forgotten = _forget_absent(snap.present)
    logger.debug(
        "event=statements_snapshot statements=%s moved=%s new=%s reset=%s forgotten=%s",
        snap.statements,
        snap.moved,
        snap.new,
        reset,
        forgotten,
    )
    return record


def row_bytes():
    return ROW_BYTES["postgresql" if state.is_postgresql() else "sqlite"]


def estimated_bytes():
    """What the history takes in the state database, estimated from row
    counts and text lengths (no scan of the delta table)."""
    size = row_bytes()
    snapshots, deltas = StatementSnapshot.select(
        peewee.fn.COUNT(StatementSnapshot.id), peewee.fn.SUM(StatementSnapshot.moved)
    ).tuples()[0]
    statements, texts = Statement.select(
        peewee.fn.COUNT(Statement.id), peewee.fn.SUM(Statement.bytes)
    ).tuples()[0]
    return (
        (snapshots or 0) * size.snapshot
        + (deltas or 0) * size.delta
        + (statements or 0) * (size.statement + size.baseline)
        + (texts or 0)
    )


def _drop_snapshots(ids):
    for chunk in peewee.chunked(ids, CHUNK):
        StatementDelta.delete().where(StatementDelta.snapshot.in_(chunk)).execute()
        StatementSnapshot.delete().where(StatementSnapshot.id.in_(chunk)).execute()


def trim(settings, now=None):
    """Drop the snapshots older than statements_retention, then the oldest
    ones while the estimate exceeds statements_budget (the newest stays);
    returns how many went."""
    now = now or state.utcnow()
    cutoff = now - datetime.timedelta(seconds=settings["statements_retention"])
    with state.database.atomic():
        snapshots = list(
            StatementSnapshot.select(
                StatementSnapshot.id, StatementSnapshot.taken_at, StatementSnapshot.moved
            )
            .order_by(StatementSnapshot.taken_at, StatementSnapshot.id)
            .tuples()
        )
        excess = estimated_bytes() - settings["statements_budget"] * MB
        size = row_bytes()
        dropped = []
        for index, (snapshot_id, taken_at, moved) in enumerate(snapshots):
            newest = index == len(snapshots) - 1
            if taken_at >= cutoff and (excess <= 0 or newest):
                break
            dropped.append(snapshot_id)
            excess -= moved * size.delta + size.snapshot
        _drop_snapshots(dropped)
    if dropped:
        logger.debug("event=statements_trimmed snapshots=%s", len(dropped))
    return len(dropped)


def collect_and_store(pg, settings, now=None):
    """One snapshot, then the history trimmed to its retention and budget."""
    record = snapshot(pg, now)
    trim(settings, now)
    return record


# -- the history --------------------------------------------------------------------------


def parse_moment(name, text):
    """A `start` or `end` (YYYY-MM-DDTHH:MM:SSZ) as naive UTC, or Malformed."""
    if text is None:
        return None
    try:
        return datetime.datetime.strptime(text, MOMENT)
    except ValueError:
        raise Malformed(name) from None


def _totals_query(start, end):
    sums = [peewee.fn.SUM(getattr(StatementDelta, name)).alias(name) for name in COUNTERS]
    window = StatementSnapshot.taken_at <= end
    if start is not None:
        window &= StatementSnapshot.taken_at > start
    return (
        StatementDelta.select(
            Statement.queryid,
            Statement.dbid,
            Statement.datname,
            Statement.userid,
            Statement.rolname,
            Statement.toplevel,
            Statement.query,
            *sums,
        )
        .join(StatementSnapshot)
        .switch(StatementDelta)
        .join(Statement)
        .where(window)
        .group_by(Statement.id)
        .order_by(peewee.fn.SUM(StatementDelta.total_exec_time).desc())
        .dicts()
    )


def _with_figures(row):
    """A history row with the figures a reader wants beside the sums."""
    row["toplevel"] = bool(row["toplevel"])
    for name in COUNTERS:  # PostgreSQL sums integers as numeric
        row[name] = float(row[name] or 0) if name in TIMES else int(row[name] or 0)
    calls, total = row["calls"], row["total_exec_time"]
    blocks = row["shared_blks_hit"] + row["shared_blks_read"]
    row["total_time"] = total
    row["mean_exec_time"] = row["mean_time"] = total / calls if calls else None
    row["hit_ratio"] = 100 * row["shared_blks_hit"] / blocks if blocks else None
    return row


def history(start, end):
    """The window's totals per statement (those that moved in it), the
    busiest first, as an iterator of dicts: the deltas of the snapshots taken
    after `start` (all kept without it) and up to `end`."""
    if start is not None and start > end:
        raise Invalid("start is after end.")
    return (_with_figures(row) for row in _totals_query(start, end).iterator())


def window(start, end):
    """What the window holds: how many snapshots, and the first and last taken."""
    query = StatementSnapshot.select(
        peewee.fn.COUNT(StatementSnapshot.id),
        peewee.fn.MIN(StatementSnapshot.taken_at),
        peewee.fn.MAX(StatementSnapshot.taken_at),
    ).where(StatementSnapshot.taken_at <= end)
    if start is not None:
        query = query.where(StatementSnapshot.taken_at > start)
    count, first, last = query.tuples()[0]
    return {"snapshots": count, "first": _iso(first), "last": _iso(last)}


def _iso(moment):
    if moment is None:
        return None
    if isinstance(moment, str):  # SQLite hands aggregates back as text
        moment = datetime.datetime.fromisoformat(moment)
    return moment.strftime(MOMENT)


def _page_row(row):
    blocks = row["shared_blks_hit"] + row["shared_blks_read"]
    calls = row["calls"]
    return {
        "key": f"{row['queryid']}:{row['dbid']}:{row['userid']}:{int(row['toplevel'])}",
        "datname": row["datname"],
        "rolname": row["rolname"],
        "query": row["query"],
        "calls": calls,
        "total_exec_time": row["total_exec_time"],
        "mean_exec_time": row["total_exec_time"] / calls if calls else None,
        "rows": row["rows"],
        "hit_ratio": 100 * row["shared_blks_hit"] / blocks if blocks else None,
        "temp_blks_written": row["temp_blks_written"],
    }


def page_rows(start, end):
    """The Statements page's rows over a window of the history."""
    return [_page_row(row) for row in history(start, end)]


def config(settings):
    return {
        "interval": settings["statements_interval"],
        "retention": settings["statements_retention"],
        "budget_mb": settings["statements_budget"],
    }
