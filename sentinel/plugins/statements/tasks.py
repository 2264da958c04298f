"""The statements plugin's periodic job, run by the RQ worker in its application context."""

from flask import current_app

from ...extensions import postgres
from . import statements


def snapshot():
    """One snapshot of pg_stat_statements (every statements_interval seconds)."""
    statements.collect_and_store(postgres.pool, current_app.config["SENTINEL"])
