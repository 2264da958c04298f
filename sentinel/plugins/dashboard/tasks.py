"""The dashboard's periodic job, run by the RQ worker in its application context."""

from flask import current_app

from ...extensions import postgres, redis
from . import dashboard


def collect():
    """One dashboard data set (every dashboard_interval seconds)."""
    dashboard.collect_and_store(postgres.pool, redis.samples, current_app.config["SENTINEL"])
