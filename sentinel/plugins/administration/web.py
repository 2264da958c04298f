"""The Administration page: the instance's state, reload and restart."""

from flask import Blueprint, jsonify, render_template
from flask_login import current_user

from ...auth.access import settings, signed_in
from ...contract import BOOLEAN, HTML, INTEGER, NUMBER, STRING, array, describe, nullable, record
from ...core import health
from ...extensions import postgres
from . import administration
from .api import ACTION

blueprint = Blueprint(
    "administration_ui",
    __name__,
    url_prefix="/ui/administration",
    template_folder="templates",
    static_folder="static",
)

STATE = record(
    up=BOOLEAN,
    version=nullable(STRING),
    reason=nullable(STRING),
    started_at=nullable(NUMBER),
    at=nullable(NUMBER),
    connections=nullable(INTEGER),
    pending_restart=array(STRING),
)


def instance_state():
    """Whether PostgreSQL is up, since when, and the settings a restart would apply."""
    row, reason = health.read(postgres.pool)
    if row is None:
        return {
            "up": False,
            "version": None,
            "reason": reason,
            "started_at": None,
            "at": None,
            "connections": None,
            "pending_restart": [],
        }
    return {
        "up": True,
        "version": row["version"],
        "reason": None,
        "started_at": row["started_at"],
        "at": row["at"],
        "connections": row["connections"],
        "pending_restart": row["pending_restart"],
    }


@blueprint.get("/")
@signed_in
@describe("The Administration page", answers={200: (HTML, STRING)})
def page():
    return render_template(
        "administration.html", instance=instance_state(), pg_ctl=bool(settings()["pg_ctl"])
    )


@blueprint.get("/state")
@signed_in
@describe(
    "Whether PostgreSQL is up, its version, since when, and the settings pending a restart",
    answers={200: STATE},
)
def state():
    return jsonify(instance_state())


@blueprint.post("/control")
@signed_in(admin=True)
@describe(
    "Reload or restart PostgreSQL from the page",
    body=ACTION,
    answers={
        200: record(
            action={"enum": list(administration.ACTIONS)},
            state={"enum": ["ok", "ko"]},
            reason=nullable(STRING),
        )
    },
    errors=(409,),
)
def control(body):
    state, reason = administration.perform(
        body["action"], current_user.username, postgres.pool, settings()
    )
    return jsonify(action=body["action"], state=state, reason=reason)
