"""Core API: login, logout, discover, profile, notifications, status."""

import getpass

from flask import Blueprint, current_app, g, jsonify

from .. import __version__, accounts, instance, notifications, sessions, state
from ..errors import Malformed, NotReady
from ..extensions import postgres
from .auth import (
    check_agent_key,
    client_address,
    presented_key,
    recent_sessions,
    session_required,
    settings,
)
from .body import json_body

blueprint = Blueprint("core", __name__)


@blueprint.post("/login")
def login():
    body = json_body()
    if not isinstance(body, dict):
        raise Malformed("username")
    user = accounts.authenticate(
        body.get("username"), body.get("password"), client_address(), settings()
    )
    session_id = sessions.open_session(user, client_address(), settings()["session_timeout"])
    notifications.record(user.username, "Login")
    return jsonify(session=session_id)


@blueprint.get("/logout")
@session_required
def logout():
    sessions.close_session(g.session_id, recent_sessions())
    notifications.record(g.username, "Logout")
    return jsonify(logout=True)


@blueprint.get("/discover")
def discover():
    key = presented_key()
    if key is not None:
        check_agent_key(key)
    return jsonify(
        instance.discover(postgres.pool, settings(), current_app.extensions["sentinel.plugins"])
    )


@blueprint.get("/profile")
@session_required
def profile():
    return jsonify(username=g.username)


@blueprint.get("/notifications")
@session_required(key=True)
def list_notifications():
    return jsonify(notifications.recent())


@blueprint.get("/status")
def status():
    try:
        state.database.execute_sql("SELECT 1")
    except Exception as exc:
        raise NotReady(f"Sentinel is not ready: state database unavailable: {exc}") from None
    started = current_app.extensions["sentinel.started_at"].isoformat()
    return jsonify(
        pid=current_app.extensions["sentinel.pid"],
        user=getpass.getuser(),
        start_datetime=started,
        reload_datetime=started,
        configfile=settings()["config_file"],
        version=__version__,
    )
