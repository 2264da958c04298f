"""The maintenance plugin's state: one row per VACUUM, ANALYZE or REINDEX asked
for, so the lists answer and the jobs survive without Redis."""

import peewee

from ...state import BaseModel, utcnow

# MaintenanceJob.status
TODO, DOING, DONE, FAILED, CANCELED = "todo", "doing", "done", "failed", "canceled"
FINISHED = (DONE, FAILED, CANCELED)


class MaintenanceJob(BaseModel):
    """An operation on a database, table or index, now or at `scheduled_at`
    (naive UTC), and what became of it."""

    id = peewee.CharField(primary_key=True, max_length=8)
    operation = peewee.CharField(max_length=16)  # vacuum | analyze | reindex
    dbname = peewee.CharField(max_length=255)
    schema_name = peewee.CharField(max_length=255, null=True)
    table_name = peewee.CharField(max_length=255, null=True)
    index_name = peewee.CharField(max_length=255, null=True)
    mode = peewee.CharField(max_length=64, null=True)  # vacuum: "full,freeze,analyze" or ""
    scheduled_at = peewee.DateTimeField(index=True)
    status = peewee.CharField(max_length=16, default=TODO, index=True)
    requested_by = peewee.CharField(max_length=64, null=True)
    requested_at = peewee.DateTimeField(default=utcnow)
    started_at = peewee.DateTimeField(null=True)
    finished_at = peewee.DateTimeField(null=True)
    worker = peewee.CharField(max_length=255, null=True)  # host:pid running it
    backend_pid = peewee.IntegerField(null=True)  # its PostgreSQL backend, for progress
    output = peewee.TextField(null=True)
    error = peewee.TextField(null=True)

    class Meta:
        table_name = "maintenance_jobs"
