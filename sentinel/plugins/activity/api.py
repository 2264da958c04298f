"""Activity plugin API: backends, lock waits and blockers, the lock tree, and
cancelling or terminating backends."""

from flask import Blueprint, g, jsonify

from ...auth.access import session_required, settings
from ...contract import (
    INTEGER,
    NUMBER,
    STRING,
    array,
    component,
    describe,
    nullable,
    record,
)
from ...extensions import postgres, redis
from . import activity

blueprint = Blueprint("activity", __name__, url_prefix="/activity")

YES_NO = {"enum": ["Y", "N"]}
PROCESS = {
    "cpu": NUMBER,
    "memory": NUMBER,
    "read_s": STRING,
    "write_s": STRING,
    "iow": YES_NO,
}
BACKEND = record(
    pid=INTEGER,
    database=nullable(STRING),
    client=nullable(STRING),
    duration=NUMBER,
    wait=YES_NO,
    user=nullable(STRING),
    state=nullable(STRING),
    query=nullable(STRING),
    application_name=nullable(STRING),
    **PROCESS,
)
LOCK_ROW = record(
    pid=INTEGER,
    database=nullable(STRING),
    user=nullable(STRING),
    mode=STRING,
    type=STRING,
    relation=STRING,
    duration=NUMBER,
    state=nullable(STRING),
    query=nullable(STRING),
    **PROCESS,
)
LOCK = record(relation=STRING, type=STRING, mode=STRING)
LOCK_NODE = component(
    "LockTreeNode",
    record(
        pid=INTEGER,
        database=nullable(STRING),
        user=nullable(STRING),
        state=nullable(STRING),
        query=nullable(STRING),
        duration=NUMBER,
        xact_age=nullable(NUMBER),
        wait_event_type=nullable(STRING),
        wait_event=nullable(STRING),
        locks=array(LOCK),
        blocking=array({"$ref": "#/components/schemas/LockTreeNode"}),
    ),
)
PIDS = record(pids=array({"type": "integer", "minimum": 1, "maximum": activity.MAX_PID}))
POSTGRES_ERRORS = (503, 504)


def identity():
    return postgres.pool.identity(settings()["hostname"])


@blueprint.get("")
@session_required(key=True)
@describe(
    "Client backends, longest-running first, with their process's figures",
    answers={200: record(rows=array(BACKEND))},
    errors=POSTGRES_ERRORS,
)
def backends():
    return jsonify(rows=activity.backends(postgres.pool, redis.samples, identity()))


@blueprint.get("/waiting")
@session_required(key=True)
@describe(
    "Backends waiting for a lock, one row per awaited lock",
    answers={200: record(rows=array(LOCK_ROW))},
    errors=POSTGRES_ERRORS,
)
def waiting():
    return jsonify(rows=activity.waiting(postgres.pool, redis.samples, identity()))


@blueprint.get("/blocking")
@session_required(key=True)
@describe(
    "Backends holding a lock others wait for, one row per such lock",
    answers={200: record(rows=array(LOCK_ROW))},
    errors=POSTGRES_ERRORS,
)
def blocking():
    return jsonify(rows=activity.blocking(postgres.pool, redis.samples, identity()))


@blueprint.get("/locktree")
@session_required(key=True)
@describe(
    "Who blocks whom, as trees rooted at the backends that block without waiting",
    answers={200: record(roots=array(LOCK_NODE))},
    errors=POSTGRES_ERRORS,
)
def locktree():
    return jsonify(roots=activity.lock_tree(postgres.pool))


SIGNALLED = {
    "terminate": record(backends=array(record(pid=INTEGER, killed={"type": "boolean"}))),
    "cancel": record(backends=array(record(pid=INTEGER, cancelled={"type": "boolean"}))),
}


@blueprint.post("/kill")
@session_required(admin=True)
@describe(
    "Terminate client backends (never the one answering)",
    body=PIDS,
    answers={200: SIGNALLED["terminate"]},
    errors=POSTGRES_ERRORS,
)
def kill(body):
    answers = activity.signal(postgres.pool, body["pids"], "terminate", g.username)
    return jsonify(backends=answers)


@blueprint.post("/cancel")
@session_required(admin=True)
@describe(
    "Cancel the queries of client backends (never the one answering)",
    body=PIDS,
    answers={200: SIGNALLED["cancel"]},
    errors=POSTGRES_ERRORS,
)
def cancel(body):
    answers = activity.signal(postgres.pool, body["pids"], "cancel", g.username)
    return jsonify(backends=answers)
