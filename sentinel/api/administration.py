"""Administration plugin API: control the instance, and its version."""

from flask import Blueprint, g, jsonify

from .. import administration
from ..extensions import postgres
from .auth import session_required, settings
from .body import json_body

PLUGIN = "administration"
blueprint = Blueprint(PLUGIN, __name__, url_prefix="/administration")


@blueprint.post("/control")
@session_required
def control():
    action = administration.check_action(json_body())
    state, _ = administration.perform(action, g.username, postgres.pool, settings())
    return jsonify(action=action, state=state)


@blueprint.get("/pg_version")
@session_required
def pg_version():
    return jsonify(administration.pg_version(postgres.pool))
