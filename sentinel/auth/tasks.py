"""The sign-in housekeeping job, run by the RQ worker in its application context."""

import logging

from flask import current_app

from . import sessions, throttle

logger = logging.getLogger(__name__)


def housekeeping():
    """Drop expired sessions and login failures older than the throttling window."""
    settings = current_app.config["SENTINEL"]
    expired = sessions.purge_expired()
    failures = throttle.purge(settings["login_failure_window"])
    logger.debug("event=housekeeping expired_sessions=%s old_login_failures=%s", expired, failures)
    return {"expired_sessions": expired, "old_login_failures": failures}
