"""The pool's collection: samples and the last one of each metric, the
databases continuous discovery found, and the health of replication slots."""

from peewee import (
    BigAutoField,
    BigIntegerField,
    BooleanField,
    CharField,
    CompositeKey,
    DateTimeField,
    DoubleField,
    ForeignKeyField,
    Model,
    TextField,
)


def up(migrator, db):
    class Base(Model):
        class Meta:
            database = db
            legacy_table_names = False

    class Source(Base):
        id = CharField(primary_key=True, max_length=36)

        class Meta:
            table_name = "pool_source"

    class DiscoveredDatabase(Base):
        source = ForeignKeyField(Source, on_delete="CASCADE")
        dbname = CharField(max_length=255)
        found_at = DateTimeField()

        class Meta:
            table_name = "pool_discovered_database"
            indexes = ((("source", "dbname"), True),)

    class Sample(Base):
        id = BigAutoField()
        source = ForeignKeyField(Source, on_delete="CASCADE", index=False)
        dbname = CharField(max_length=255)
        metric = CharField(max_length=64)
        slot = BigIntegerField(index=True)
        collected_at = DoubleField()
        data = TextField()

        class Meta:
            table_name = "pool_sample"
            indexes = ((("source", "dbname", "metric", "slot"), True),)

    class LatestSample(Base):
        source = ForeignKeyField(Source, on_delete="CASCADE", index=False)
        dbname = CharField(max_length=255)
        metric = CharField(max_length=64)
        slot = BigIntegerField()
        collected_at = DoubleField()
        data = TextField()

        class Meta:
            table_name = "pool_latest_sample"
            primary_key = CompositeKey("source", "dbname", "metric")

    db.create_tables([DiscoveredDatabase, Sample, LatestSample])
    slot = "pool_replication_slot"
    migrator.migrate(
        migrator.add_column(slot, "active", BooleanField(null=True)),
        migrator.add_column(slot, "retained_wal_bytes", BigIntegerField(null=True)),
        migrator.add_column(slot, "xmin_age", BigIntegerField(null=True)),
        migrator.add_column(slot, "checked_at", DateTimeField(null=True)),
    )
