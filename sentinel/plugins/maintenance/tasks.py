"""The maintenance plugin's jobs, run by the RQ worker in its application context."""

from flask import current_app

from ...extensions import postgres, redis
from . import insight, operations


def run_job(job_id):
    """Run one VACUUM, ANALYZE or REINDEX asked for (its row holds what)."""
    settings = current_app.config["SENTINEL"]
    operations.run(postgres.pool.dsn, settings["maintenance_lock_timeout"], job_id)


def reconcile():
    """Every few seconds: waiting jobs back into a Redis that lost them,
    running jobs of a dead worker marked failed, and a reading of the next
    transaction id for the wraparound estimates."""
    operations.reconcile(redis.connection)
    identity = postgres.pool.identity(current_app.config["SENTINEL"]["hostname"])
    insight.xid_reading(postgres.pool, redis.samples, identity)
