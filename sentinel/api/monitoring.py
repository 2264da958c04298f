"""Monitoring plugin API: run a probe, the collector's history, its settings."""

from flask import Blueprint, current_app, jsonify, request

from .. import monitoring, probes
from ..extensions import postgres, redis
from .auth import session_required, settings

PLUGIN = "monitoring"
blueprint = Blueprint(PLUGIN, __name__, url_prefix="/monitoring")

# Unknown probe names match no route, so they get the agent's 404 before any
# session check, as on the agent.
PROBE_ROUTE = f"/probe/<any({', '.join(probes.NAMES)}):name>"


@blueprint.get(PROBE_ROUTE)
@session_required(key=True)
def probe(name):
    return jsonify({name: monitoring.run_probe(name, postgres.pool, redis.samples)})


@blueprint.get("/history")
@session_required(key=True)
def history():
    start, limit = monitoring.history_window(request.args.get("start"), request.args.get("limit"))
    # The runs are stored as JSON text: join them rather than parse and re-encode.
    body = "[" + ",".join(monitoring.history(start, limit)) + "]"
    return current_app.response_class(body, mimetype="application/json")


@blueprint.get("/config")
@session_required(key=True)
def config():
    return jsonify(monitoring.config(settings()))
