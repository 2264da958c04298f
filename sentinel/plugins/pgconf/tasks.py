"""The pgconf plugin's periodic job, run by the RQ worker in its application context."""

import logging

from flask import current_app

from ...errors import SentinelError
from ...extensions import postgres
from . import pgconf

logger = logging.getLogger(__name__)

# Seconds between two looks for changes made outside Sentinel.
WATCH_INTERVAL = 60


def watch():
    """Look at the settings and record the changes made outside Sentinel since
    the last look, within a minute of them even when nobody reads the
    history. While PostgreSQL is down there is nothing to see: said in one
    line, and the next run looks again."""
    pool = postgres.pool
    try:
        pgconf.observe(
            pgconf.read_settings(pool), pool.identity(current_app.config["SENTINEL"]["hostname"])
        )
    except SentinelError as exc:
        logger.warning("event=settings_watch_skipped reason=%s", exc.message)
