"""Activity plugin API: backends, lock waits and blockers, the lock tree, and
cancelling or terminating backends."""

from flask import Blueprint, g, jsonify

from .. import activity
from ..extensions import postgres, redis
from .auth import session_required, settings
from .body import json_body

PLUGIN = "activity"
blueprint = Blueprint(PLUGIN, __name__, url_prefix="/activity")


@blueprint.get("")
@session_required(key=True)
def backends():
    rows = activity.backends(postgres.pool, redis.samples, settings()["hostname"])
    return jsonify(rows=rows)


@blueprint.get("/waiting")
@session_required(key=True)
def waiting():
    rows = activity.waiting(postgres.pool, redis.samples, settings()["hostname"])
    return jsonify(rows=rows)


@blueprint.get("/blocking")
@session_required(key=True)
def blocking():
    rows = activity.blocking(postgres.pool, redis.samples, settings()["hostname"])
    return jsonify(rows=rows)


@blueprint.get("/locktree")
@session_required(key=True)
def locktree():
    return jsonify(roots=activity.lock_tree(postgres.pool))


@blueprint.post("/kill")
@session_required
def kill():
    pids = activity.check_pids(json_body())
    return jsonify(backends=activity.signal(postgres.pool, pids, "terminate", g.username))


@blueprint.post("/cancel")
@session_required
def cancel():
    pids = activity.check_pids(json_body())
    return jsonify(backends=activity.signal(postgres.pool, pids, "cancel", g.username))
