"""The monitoring plugin's periodic job, run by the RQ worker in its application context."""

from flask import current_app

from ...extensions import postgres, redis
from . import monitoring


def collect():
    """One run of every probe (every monitoring_interval seconds)."""
    monitoring.collect_and_store(postgres.pool, redis.samples, current_app.config["SENTINEL"])
