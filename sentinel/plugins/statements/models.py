"""The statement history in Sentinel's state: each statement once with its
text, the last counters read of it (the baseline the next delta is taken
from), and per snapshot the increase of the counters of those that moved.

Created by migration 0005_statements_history.
"""

import peewee

from ...state import BaseModel

# The pg_stat_statements counters the history keeps, all increasing until a
# reset: a delta is the difference of two readings.
COUNTERS = (
    "calls",
    "plans",
    "total_exec_time",
    "total_plan_time",
    "rows",
    "shared_blks_hit",
    "shared_blks_read",
    "shared_blks_dirtied",
    "shared_blks_written",
    "local_blks_hit",
    "local_blks_read",
    "local_blks_dirtied",
    "local_blks_written",
    "temp_blks_read",
    "temp_blks_written",
    "blk_read_time",
    "blk_write_time",
    "wal_records",
    "wal_bytes",
)
TIMES = ("total_exec_time", "total_plan_time", "blk_read_time", "blk_write_time")  # ms


class Counters(BaseModel):
    """The counters, as the baseline and the delta tables both hold them
    (milliseconds as floats, the rest as integers). Has no table of its own."""

    calls = peewee.BigIntegerField(default=0)
    plans = peewee.BigIntegerField(default=0)
    total_exec_time = peewee.FloatField(default=0)
    total_plan_time = peewee.FloatField(default=0)
    rows = peewee.BigIntegerField(default=0)
    shared_blks_hit = peewee.BigIntegerField(default=0)
    shared_blks_read = peewee.BigIntegerField(default=0)
    shared_blks_dirtied = peewee.BigIntegerField(default=0)
    shared_blks_written = peewee.BigIntegerField(default=0)
    local_blks_hit = peewee.BigIntegerField(default=0)
    local_blks_read = peewee.BigIntegerField(default=0)
    local_blks_dirtied = peewee.BigIntegerField(default=0)
    local_blks_written = peewee.BigIntegerField(default=0)
    temp_blks_read = peewee.BigIntegerField(default=0)
    temp_blks_written = peewee.BigIntegerField(default=0)
    blk_read_time = peewee.FloatField(default=0)
    blk_write_time = peewee.FloatField(default=0)
    wal_records = peewee.BigIntegerField(default=0)
    wal_bytes = peewee.BigIntegerField(default=0)


class Statement(BaseModel):
    """A statement as pg_stat_statements keys it, with its text, stored once."""

    queryid = peewee.BigIntegerField()
    dbid = peewee.BigIntegerField()  # oids are unsigned 32-bit
    userid = peewee.BigIntegerField()
    toplevel = peewee.BooleanField()
    datname = peewee.TextField(null=True)
    rolname = peewee.TextField(null=True)
    query = peewee.TextField()
    first_seen = peewee.DateTimeField()
    bytes = peewee.IntegerField()  # its text's size, for the size estimate

    class Meta:
        table_name = "statement"
        indexes = ((("queryid", "dbid", "userid", "toplevel"), True),)


class StatementSnapshot(BaseModel):
    """One reading of pg_stat_statements by the collector."""

    taken_at = peewee.DateTimeField(index=True)
    stats_reset = peewee.DateTimeField(null=True)  # pg_stat_statements_info's, PostgreSQL 14+
    statements = peewee.IntegerField()  # entries pg_stat_statements held
    moved = peewee.IntegerField()  # delta rows stored (statements whose counters moved)
    new = peewee.IntegerField()  # statements seen for the first time (their text read)

    class Meta:
        table_name = "statement_snapshot"


class StatementBaseline(Counters):
    """The counters of a statement when last read: the next delta starts there."""

    statement = peewee.ForeignKeyField(Statement, primary_key=True, on_delete="CASCADE")

    class Meta:
        table_name = "statement_baseline"


class StatementDelta(Counters):
    """How much a statement's counters grew between a snapshot and the one before."""

    snapshot = peewee.ForeignKeyField(StatementSnapshot, on_delete="CASCADE", index=False)
    statement = peewee.ForeignKeyField(Statement, on_delete="CASCADE", index=True)

    class Meta:
        table_name = "statement_delta"
        primary_key = peewee.CompositeKey("snapshot", "statement")


MODELS = (Statement, StatementSnapshot, StatementBaseline, StatementDelta)
