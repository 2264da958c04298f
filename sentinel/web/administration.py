"""The Administration page: the instance's state, reload and restart."""

from flask import Blueprint, current_app, jsonify, render_template, request
from flask_login import current_user, login_required

from .. import administration
from ..errors import PostgresUnavailable
from ..extensions import postgres

blueprint = Blueprint("web_administration", __name__, url_prefix="/ui/administration")
NAV = ("Administration", "web_administration.page")


def instance_state():
    try:
        version = administration.pg_version(postgres.pool)
    except PostgresUnavailable as exc:
        return {"up": False, "version": None, "reason": exc.reason}
    return {"up": True, "version": version["full"], "reason": None}


@blueprint.get("/")
@login_required
def page():
    settings = current_app.config["SENTINEL"]
    return render_template(
        "administration.html", instance=instance_state(), pg_ctl=bool(settings["pg_ctl"])
    )


@blueprint.get("/state")
@login_required
def state():
    return jsonify(instance_state())


@blueprint.post("/control")
@login_required
def control():
    action = administration.check_action(request.get_json(silent=True))
    state, reason = administration.perform(
        action, current_user.username, postgres.pool, current_app.config["SENTINEL"]
    )
    return jsonify(action=action, state=state, reason=reason)
