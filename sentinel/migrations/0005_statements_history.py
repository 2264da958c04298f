"""The statement history: statements with their text, snapshots, the last
counters read of each statement, and the deltas of those that moved."""

from peewee import (
    BigIntegerField,
    BooleanField,
    CompositeKey,
    DateTimeField,
    FloatField,
    ForeignKeyField,
    IntegerField,
    Model,
    TextField,
)

COUNTERS = (
    ("calls", BigIntegerField),
    ("plans", BigIntegerField),
    ("total_exec_time", FloatField),
    ("total_plan_time", FloatField),
    ("rows", BigIntegerField),
    ("shared_blks_hit", BigIntegerField),
    ("shared_blks_read", BigIntegerField),
    ("shared_blks_dirtied", BigIntegerField),
    ("shared_blks_written", BigIntegerField),
    ("local_blks_hit", BigIntegerField),
    ("local_blks_read", BigIntegerField),
    ("local_blks_dirtied", BigIntegerField),
    ("local_blks_written", BigIntegerField),
    ("temp_blks_read", BigIntegerField),
    ("temp_blks_written", BigIntegerField),
    ("blk_read_time", FloatField),
    ("blk_write_time", FloatField),
    ("wal_records", BigIntegerField),
    ("wal_bytes", BigIntegerField),
)


def up(migrator, db):
    class Base(Model):
        class Meta:
            database = db
            legacy_table_names = False

    class Statement(Base):
        queryid = BigIntegerField()
        dbid = BigIntegerField()
        userid = BigIntegerField()
        toplevel = BooleanField()
        datname = TextField(null=True)
        rolname = TextField(null=True)
        query = TextField()
        first_seen = DateTimeField()
        bytes = IntegerField()

        class Meta:
            table_name = "statement"
            indexes = ((("queryid", "dbid", "userid", "toplevel"), True),)

    class StatementSnapshot(Base):
        taken_at = DateTimeField(index=True)
        stats_reset = DateTimeField(null=True)
        statements = IntegerField()
        moved = IntegerField()
        new = IntegerField()

        class Meta:
            table_name = "statement_snapshot"

    class StatementBaseline(Base):
        statement = ForeignKeyField(Statement, primary_key=True, on_delete="CASCADE")

        class Meta:
            table_name = "statement_baseline"

    class StatementDelta(Base):
        snapshot = ForeignKeyField(StatementSnapshot, on_delete="CASCADE", index=False)
        statement = ForeignKeyField(Statement, on_delete="CASCADE", index=True)

        class Meta:
            table_name = "statement_delta"
            primary_key = CompositeKey("snapshot", "statement")

    for model in (StatementBaseline, StatementDelta):
        for name, kind in COUNTERS:
            model._meta.add_field(name, kind(default=0))

    db.create_tables([Statement, StatementSnapshot, StatementBaseline, StatementDelta])
