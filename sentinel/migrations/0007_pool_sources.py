"""The pool: the sources monitored without an agent, their passwords
encrypted, and their logical replication slots."""

from peewee import (
    BooleanField,
    CharField,
    DateTimeField,
    ForeignKeyField,
    IntegerField,
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
        name = CharField(unique=True, max_length=128)
        host = CharField(max_length=255)
        port = IntegerField()
        dbname = CharField(max_length=255)
        user = CharField(max_length=255)
        encrypted_password = TextField()
        sslmode = CharField(max_length=16)
        ipv6 = BooleanField()
        tags = TextField()
        group = CharField(max_length=255)
        kind = CharField(max_length=32)
        include_pattern = TextField()
        exclude_pattern = TextField()
        preset = CharField(max_length=128, null=True)
        metrics = TextField()
        standby_preset = CharField(max_length=128, null=True)
        standby_metrics = TextField()
        only_if_primary = BooleanField()
        enabled = BooleanField()
        collection_rate = CharField(max_length=8)
        samples = BooleanField()
        lock_monitoring = BooleanField()
        lock_monitoring_delay = IntegerField()
        table_monitoring = BooleanField()
        query_monitoring = BooleanField()
        query_optimize = BooleanField()
        min_calls = IntegerField()
        min_time = IntegerField()
        host_config = TextField()
        primary_host = CharField(max_length=255, null=True)
        primary_port = IntegerField(null=True)
        primary_dbname = CharField(max_length=255, null=True)
        primary_user = CharField(max_length=255, null=True)
        primary_encrypted_password = TextField(null=True)
        primary_sslmode = CharField(max_length=16, null=True)
        created_at = DateTimeField()
        updated_at = DateTimeField()
        connected = BooleanField(null=True)
        last_error = TextField(null=True)
        last_collected_at = DateTimeField(null=True)

        class Meta:
            table_name = "pool_source"

    class ReplicationSlot(Base):
        id = CharField(primary_key=True, max_length=36)
        source = ForeignKeyField(Source, on_delete="CASCADE")
        publication_name = CharField(max_length=255)
        slot_name = CharField(max_length=255)
        status = CharField(max_length=16)

        class Meta:
            table_name = "pool_replication_slot"
            indexes = ((("source", "slot_name"), True),)

    db.create_tables([Source, ReplicationSlot])
