"""Administration plugin API: control the instance, and its version."""

from flask import Blueprint, g, jsonify

from ...auth.access import session_required, settings
from ...contract import INTEGER, STRING, describe, record
from ...extensions import postgres
from . import administration

blueprint = Blueprint("administration", __name__, url_prefix="/administration")

ACTION = record(action={"enum": list(administration.ACTIONS)})
CONTROLLED = record(action={"enum": list(administration.ACTIONS)}, state={"enum": ["ok", "ko"]})
VERSION = record(numeric=INTEGER, full=STRING)


@blueprint.post("/control")
@session_required(admin=True)
@describe(
    "Start, stop, restart or reload PostgreSQL",
    body=ACTION,
    answers={200: CONTROLLED},
    errors=(409,),
    description="`state` is `ko` when the action failed; why is in the notifications.",
)
def control(body):
    state, _ = administration.perform(body["action"], g.username, postgres.pool, settings())
    return jsonify(action=body["action"], state=state)


@blueprint.get("/pg_version")
@session_required
@describe(
    "The server's version number and version() string",
    answers={200: VERSION},
    errors=(503, 504),
)
def pg_version():
    return jsonify(administration.pg_version(postgres.pool))
