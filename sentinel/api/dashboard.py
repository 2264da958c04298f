"""Dashboard plugin API: the collected data sets, and each figure read now.

/dashboard and /dashboard/history serve what the collector stored; every other
route reads its figure when asked, as the agent does, and none of them sleeps
(the CPU rate is taken against the previous measure in the sample store).
"""

from flask import Blueprint, Response, jsonify

from .. import dashboard, host
from ..extensions import postgres, redis
from .auth import session_required, settings

PLUGIN = "dashboard"
blueprint = Blueprint(PLUGIN, __name__, url_prefix="/dashboard")


def instance_now():
    """The cheap PostgreSQL figures (no database sizes), read now."""
    return dashboard.instance_part(postgres.pool, settings(), with_databases=False)


@blueprint.get("")
@session_required(key=True)
def last():
    return Response(dashboard.last_json(), mimetype="application/json")


@blueprint.get("/live")
@session_required(key=True)
def live():
    return jsonify(dashboard.live(postgres.pool, redis.samples, settings()))


@blueprint.get("/history")
@session_required(key=True)
def history():
    return Response(dashboard.history_json(settings()), mimetype="application/json")


@blueprint.get("/config")
@session_required(key=True)
def config():
    return jsonify(dashboard.config(settings()))


@blueprint.get("/buffers")
@session_required(key=True)
def buffers():
    return jsonify(buffers=instance_now()["buffers"])


@blueprint.get("/hitratio")
@session_required(key=True)
def hitratio():
    return jsonify(hitratio=instance_now()["hitratio"])


@blueprint.get("/active_backends")
@session_required(key=True)
def active_backends():
    return jsonify(active_backends=instance_now()["active_backends"])


@blueprint.get("/max_connections")
@session_required(key=True)
def max_connections():
    return jsonify(max_connections=instance_now()["max_connections"])


@blueprint.get("/pg_version")
@session_required(key=True)
def pg_version():
    return jsonify(pg_version=instance_now()["pg_version"])


@blueprint.get("/databases")
@session_required(key=True)
def databases():
    return jsonify(databases=dashboard.databases(postgres.pool))


@blueprint.get("/info")
@session_required(key=True)
def info():
    return jsonify(dashboard.info(postgres.pool, settings()))


@blueprint.get("/cpu")
@session_required(key=True)
def cpu():
    return jsonify(cpu=dashboard.cpu(redis.samples, settings()))


@blueprint.get("/loadaverage")
@session_required(key=True)
def loadaverage():
    return jsonify(loadaverage=dashboard.loadaverage())


@blueprint.get("/memory")
@session_required(key=True)
def memory():
    return jsonify(memory=dashboard.memory())


@blueprint.get("/hostname")
@session_required(key=True)
def hostname():
    return jsonify(hostname=settings()["hostname"])


@blueprint.get("/os_version")
@session_required(key=True)
def os_version():
    return jsonify(os_version=dashboard.os_version())


@blueprint.get("/n_cpu")
@session_required(key=True)
def n_cpu():
    return jsonify(n_cpu=host.static_facts()["cpu"])
