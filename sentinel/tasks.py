"""Job functions run by the RQ worker, inside the worker's application context."""

import logging

from flask import current_app

from . import dashboard, monitoring, sessions, throttle
from .extensions import postgres, redis

logger = logging.getLogger(__name__)


def housekeeping():
    """Drop expired sessions and login failures older than the throttling window."""
    settings = current_app.config["SENTINEL"]
    expired = sessions.purge_expired()
    failures = throttle.purge(settings["login_failure_window"])
    logger.info("event=housekeeping expired_sessions=%s old_login_failures=%s", expired, failures)
    return {"expired_sessions": expired, "old_login_failures": failures}


def collect_dashboard():
    """One dashboard sample (every dashboard_interval seconds)."""
    dashboard.collect_and_store(postgres.pool, redis.samples, current_app.config["SENTINEL"])


def collect_monitoring():
    """One run of every probe (every monitoring_interval seconds)."""
    monitoring.collect_and_store(postgres.pool, redis.samples, current_app.config["SENTINEL"])
