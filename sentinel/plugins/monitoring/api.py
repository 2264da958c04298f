"""Monitoring plugin API: run a probe, the collector's history, its settings."""

from flask import Blueprint, jsonify

from ...answers import json_array
from ...auth.access import session_required, settings
from ...contract import INTEGER, STRING, array, describe, record
from ...extensions import postgres, redis
from . import monitoring, probes
from .schemas import PROBE_RECORDS, RUN

blueprint = Blueprint("monitoring", __name__, url_prefix="/monitoring")

START = {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$"}
LIMIT = {"type": "integer", "minimum": 0}


def _probe_route(name):
    """GET /monitoring/probe/<name>, answering {name: [records]}."""

    @session_required(key=True)
    @describe(
        f"The {name} probe, measured now",
        answers={200: record({name: array(PROBE_RECORDS[name])})},
        errors=() if name in probes.HOST_PROBES else (503, 504),
    )
    def view():
        return jsonify({name: monitoring.run_probe(name, postgres.pool, redis.samples, settings())})

    view.__name__ = f"probe_{name}"
    blueprint.add_url_rule(f"/probe/{name}", view_func=view, methods=["GET"])


for _name in probes.NAMES:
    _probe_route(_name)


@blueprint.get("/history")
@session_required(key=True)
@describe(
    "Kept collector runs from `start` (UTC), oldest first; the newest alone without it",
    query={"start": START, "limit": LIMIT},
    answers={200: array(RUN)},
    description="`limit` defaults to 50; 0 means no limit.",
)
def history(start, limit):
    runs = monitoring.history(
        monitoring.parse_start(start),
        monitoring.HISTORY_LIMIT if limit is None else limit,
    )
    return json_array(runs)


@blueprint.get("/config")
@session_required(key=True)
@describe(
    "Which databases are probed and how often the collector runs",
    answers={200: record(dbnames=array(STRING), scheduler_interval=INTEGER)},
)
def config():
    return jsonify(monitoring.config(settings()))
