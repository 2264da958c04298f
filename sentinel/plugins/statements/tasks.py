"""The statements plugin's periodic job, run by the RQ worker in its application context."""

import logging

from flask import current_app

from ...errors import SentinelError
from ...extensions import postgres
from . import statements

logger = logging.getLogger(__name__)


def snapshot():
    """One snapshot of pg_stat_statements (every statements_interval seconds).

    Without pg_stat_statements, or while PostgreSQL is down, there is
    nothing to read: said in one line, and the next run tries again.
    """
    try:
        statements.collect_and_store(postgres.pool, current_app.config["SENTINEL"])
    except SentinelError as exc:
        logger.warning("event=statements_snapshot_skipped reason=%s", exc.message)
