"""Dashboard plugin API: the collected data sets, and each figure read now.

/dashboard and /dashboard/history serve what the collector stored; every other
route reads its figure when asked, as the agent does, and none of them sleeps
(the CPU rate is taken against the previous measure in the sample store).
"""

from flask import Blueprint, jsonify

from ... import host
from ...answers import json_array
from ...auth.access import session_required, settings
from ...contract import INTEGER, NUMBER, STRING, array, describe, mapping, nullable, record
from ...core.api import NOTIFICATIONS
from ...extensions import postgres, redis
from . import dashboard

blueprint = Blueprint("dashboard", __name__, url_prefix="/dashboard")

COUNT_AT = record(nb=INTEGER, time=NUMBER)
CPU = record({key: NUMBER for key in dashboard.CPU_KEYS})
MEMORY = record(total=INTEGER, free=NUMBER, active=NUMBER, cached=NUMBER)
DATABASES = record(
    databases=INTEGER,
    total_size=STRING,
    time=STRING,
    total_commit=INTEGER,
    total_rollback=INTEGER,
    timestamp=NUMBER,
)
HOST_KEYS = {
    "cpu": CPU,
    "loadaverage": NUMBER,
    "memory": MEMORY,
    "hostname": STRING,
    "os_version": STRING,
    "linux_distribution": STRING,
    "cpu_models": mapping(INTEGER),
    "n_cpu": INTEGER,
    "timestamp": NUMBER,
}
# Left out while PostgreSQL does not answer.
POSTGRES_KEYS = {
    "buffers": COUNT_AT,
    "hitratio": NUMBER,
    "active_backends": COUNT_AT,
    "max_connections": INTEGER,
    "databases": DATABASES,
    "pg_uptime": INTEGER,
    "pg_version": STRING,
    "pg_data": nullable(STRING),
    "pg_port": STRING,
}
DATA_SET = record(HOST_KEYS, optional=POSTGRES_KEYS)
POSTGRES_ERRORS = (503, 504)


def instance_now():
    """The cheap PostgreSQL figures (no database sizes), read now."""
    return dashboard.instance_part(postgres.pool, settings(), with_databases=False)


@blueprint.get("")
@session_required(key=True)
@describe(
    "The last data set the collector took, with the latest notifications",
    answers={200: record(notifications=NOTIFICATIONS, optional={**HOST_KEYS, **POSTGRES_KEYS})},
    description="Before the collector's first run, only `notifications`.",
)
def last():
    return jsonify(dashboard.last())


@blueprint.get("/live")
@session_required(key=True)
@describe(
    "A data set taken now, with the latest notifications",
    answers={200: record({**HOST_KEYS, "notifications": NOTIFICATIONS}, optional=POSTGRES_KEYS)},
)
def live():
    return jsonify(dashboard.live(postgres.pool, redis.samples, settings()))


@blueprint.get("/history")
@session_required(key=True)
@describe("The kept data sets, oldest first", answers={200: array(DATA_SET)})
def history():
    return json_array(dashboard.history(settings()))


@blueprint.get("/config")
@session_required(key=True)
@describe(
    "How often the collector runs and how many data sets it keeps",
    answers={200: record(scheduler_interval=INTEGER, history_length=INTEGER)},
)
def config():
    return jsonify(dashboard.config(settings()))


def _figure(name, schema, summary, read, errors=POSTGRES_ERRORS):
    """A route answering {name: read()}."""

    @session_required(key=True)
    @describe(summary, answers={200: record({name: schema})}, errors=errors)
    def view():
        return jsonify({name: read()})

    view.__name__ = name
    blueprint.add_url_rule(f"/{name}", view_func=view, methods=["GET"])


_figure("buffers", COUNT_AT, "Buffers allocated so far", lambda: instance_now()["buffers"])
_figure("hitratio", NUMBER, "Cache hit ratio, in percent", lambda: instance_now()["hitratio"])
_figure(
    "active_backends",
    COUNT_AT,
    "Backends not idle",
    lambda: instance_now()["active_backends"],
)
_figure(
    "max_connections",
    INTEGER,
    "The max_connections setting",
    lambda: instance_now()["max_connections"],
)
_figure("pg_version", STRING, "version()", lambda: instance_now()["pg_version"])
_figure(
    "databases",
    DATABASES,
    "Databases, their total size and transactions",
    lambda: dashboard.databases(postgres.pool),
)
_figure("cpu", CPU, "CPU usage in percent", lambda: dashboard.cpu(redis.samples, settings()), ())
_figure("loadaverage", NUMBER, "The 1-minute load average", dashboard.loadaverage, ())
_figure("memory", MEMORY, "Memory use in percent", dashboard.memory, ())
_figure("hostname", STRING, "The host's name", lambda: settings()["hostname"], ())
_figure("os_version", STRING, "OS and kernel release", dashboard.os_version, ())
_figure("n_cpu", INTEGER, "Logical CPUs", lambda: host.static_facts()["cpu"], ())


@blueprint.get("/info")
@session_required(key=True)
@describe(
    "The host and the instance in a few words",
    answers={
        200: record(
            hostname=STRING,
            os_version=STRING,
            pg_uptime=INTEGER,
            pg_version=STRING,
            pg_data=nullable(STRING),
            pg_port=STRING,
        )
    },
    errors=POSTGRES_ERRORS,
)
def info():
    return jsonify(dashboard.info(postgres.pool, settings()))
