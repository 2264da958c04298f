"""The Activity page: backends, lock waits, blockers and the lock tree,
refreshed in place, with cancel and terminate."""

from flask import Blueprint, jsonify, render_template
from flask_login import current_user

from ...auth.access import signed_in
from ...contract import HTML, STRING, array, describe, record
from ...extensions import postgres, redis
from . import activity
from .api import BACKEND, LOCK_NODE, LOCK_ROW, PIDS, POSTGRES_ERRORS, SIGNALLED, identity

blueprint = Blueprint(
    "activity_ui",
    __name__,
    url_prefix="/ui/activity",
    template_folder="templates",
    static_folder="static",
)

OVERVIEW = record(
    activity=array(BACKEND),
    waiting=array(LOCK_ROW),
    blocking=array(LOCK_ROW),
    locktree=array(LOCK_NODE),
)


@blueprint.get("/")
@signed_in
@describe("The Activity page", answers={200: (HTML, STRING)})
def page():
    return render_template("activity.html")


@blueprint.get("/data")
@signed_in
@describe(
    "The page's four lists, read at once",
    answers={200: OVERVIEW},
    errors=POSTGRES_ERRORS,
)
def data():
    return jsonify(activity.overview(postgres.pool, redis.samples, identity()))


@blueprint.post("/kill")
@signed_in(admin=True)
@describe(
    "Terminate backends from the page",
    body=PIDS,
    answers={200: SIGNALLED["terminate"]},
    errors=POSTGRES_ERRORS,
)
def kill(body):
    answers = activity.signal(postgres.pool, body["pids"], "terminate", current_user.username)
    return jsonify(backends=answers)


@blueprint.post("/cancel")
@signed_in(admin=True)
@describe(
    "Cancel queries from the page",
    body=PIDS,
    answers={200: SIGNALLED["cancel"]},
    errors=POSTGRES_ERRORS,
)
def cancel(body):
    answers = activity.signal(postgres.pool, body["pids"], "cancel", current_user.username)
    return jsonify(backends=answers)
