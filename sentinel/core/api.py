"""Core API: discover, notifications, status, and the API's own description."""

import getpass

from flask import Blueprint, current_app, jsonify
from redis import RedisError

from .. import contract, state
from ..auth.access import check_agent_key, presented_key, session_required, settings
from ..contract import INTEGER, STRING, array, describe, nullable, record
from ..errors import NotReady
from ..extensions import postgres, redis
from ..version import __version__
from . import instance, notifications

blueprint = Blueprint("core", __name__)

NOTIFICATION = record(date=STRING, username=STRING, message=STRING)
NOTIFICATIONS = array(NOTIFICATION)
DISCOVERED = record(
    hostname=STRING,
    cpu=INTEGER,
    memory_size=INTEGER,
    plugins=array(STRING),
    pg_version=nullable(STRING),
    pg_version_summary=nullable(STRING),
    pg_port=nullable(INTEGER),
    pg_block_size=nullable(INTEGER),
    pg_data=nullable(STRING),
)
STATUS = record(
    pid=INTEGER,
    user=STRING,
    start_datetime=STRING,
    reload_datetime=STRING,
    configfile=STRING,
    version=STRING,
    redis={"enum": ["available", "unavailable"]},
)


@blueprint.get("/discover")
@describe(
    "The host, the instance and the plugins served (no session needed)",
    answers={200: DISCOVERED},
    errors=(401,),
    description="With `X-TemBoard-Agent-Key` (or `?key=`) the key must be right. The"
    " `pg_*` keys are null while PostgreSQL is down.",
)
def discover():
    key = presented_key()
    if key is not None:
        check_agent_key(key)
    plugins = current_app.extensions["sentinel.plugins"]
    return jsonify(instance.discover(postgres.pool, settings(), plugins))


@blueprint.get("/notifications")
@session_required(key=True)
@describe("Every notification, newest first", answers={200: NOTIFICATIONS})
def list_notifications():
    return jsonify(notifications.recent())


@blueprint.get("/status")
@describe(
    "Whether Sentinel serves, and its process (no session needed)",
    answers={200: STATUS},
    errors=(503,),
    description="503 while Sentinel's state database is unreachable. Without Redis it"
    " still serves (jobs wait, rates are kept per process): `redis` says so.",
)
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
        redis="available" if redis_answers() else "unavailable",
    )


def redis_answers():
    try:
        return bool(redis.connection.ping())
    except RedisError:
        return False


@blueprint.get("/openapi.json")
@describe(
    "This description of the API (OpenAPI 3.1, no session needed)",
    answers={200: record(openapi=STRING, paths={"type": "object"})},
)
def openapi():
    return jsonify(contract.openapi(current_app, __version__))
