"""The Activity page: backends, lock waits, blockers and the lock tree,
refreshed in place, with cancel and terminate."""

from flask import Blueprint, current_app, jsonify, render_template, request
from flask_login import current_user, login_required

from .. import activity
from ..extensions import postgres, redis

blueprint = Blueprint("web_activity", __name__, url_prefix="/ui/activity")
NAV = ("Activity", "web_activity.page")


@blueprint.get("/")
@login_required
def page():
    return render_template("activity.html")


@blueprint.get("/data")
@login_required
def data():
    hostname = current_app.config["SENTINEL"]["hostname"]
    return jsonify(activity.overview(postgres.pool, redis.samples, hostname))


@blueprint.post("/kill")
@login_required
def kill():
    pids = activity.check_pids(request.get_json(silent=True))
    return jsonify(
        backends=activity.signal(postgres.pool, pids, "terminate", current_user.username)
    )


@blueprint.post("/cancel")
@login_required
def cancel():
    pids = activity.check_pids(request.get_json(silent=True))
    return jsonify(backends=activity.signal(postgres.pool, pids, "cancel", current_user.username))
