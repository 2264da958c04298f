"""The maintenance plugin's jobs: VACUUM, ANALYZE and REINDEX asked for, now or
at a time, with their outcome."""

from peewee import CharField, DateTimeField, IntegerField, Model, TextField


def up(migrator, db):
    class Base(Model):
        class Meta:
            database = db
            legacy_table_names = False

    class MaintenanceJob(Base):
        id = CharField(primary_key=True, max_length=8)
        operation = CharField(max_length=16)
        dbname = CharField(max_length=255)
        schema_name = CharField(max_length=255, null=True)
        table_name = CharField(max_length=255, null=True)
        index_name = CharField(max_length=255, null=True)
        mode = CharField(max_length=64, null=True)
        scheduled_at = DateTimeField(index=True)
        status = CharField(max_length=16, index=True)
        requested_by = CharField(max_length=64, null=True)
        requested_at = DateTimeField()
        started_at = DateTimeField(null=True)
        finished_at = DateTimeField(null=True)
        worker = CharField(max_length=255, null=True)
        backend_pid = IntegerField(null=True)
        output = TextField(null=True)
        error = TextField(null=True)

        class Meta:
            table_name = "maintenance_jobs"

    db.create_tables([MaintenanceJob])
