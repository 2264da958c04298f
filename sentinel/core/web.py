"""The web UI's home page and its live figures, its API reference page, and /
sending browsers there."""

import time

from flask import Blueprint, current_app, jsonify, redirect, render_template, url_for

from .. import host
from ..auth.access import settings, signed_in
from ..contract import (
    BOOLEAN,
    HTML,
    INTEGER,
    NUMBER,
    STRING,
    array,
    describe,
    nullable,
    record,
)
from ..extensions import postgres, redis
from . import health, notifications

blueprint = Blueprint("home", __name__)

PAGE = {200: (HTML, STRING)}
STATUS = {"enum": [health.OK, health.WARNING, health.CRITICAL, health.UNKNOWN]}
SECONDS = nullable(NUMBER)
HEALTH = record(
    at=NUMBER,
    up=BOOLEAN,
    reason=nullable(STRING),
    status=STATUS,
    collectors=record(dashboard=SECONDS, monitoring=SECONDS, status=STATUS),
    optional={
        "started_at": NUMBER,
        "version": STRING,
        "port": INTEGER,
        "data_directory": nullable(STRING),
        "connections": record(used=INTEGER, max=INTEGER, status=STATUS),
        "tps": record(value=nullable(NUMBER), status=STATUS),
        "hit_ratio": record(value=nullable(NUMBER), status=STATUS),
        "longest_query": record(seconds=SECONDS, pid=nullable(INTEGER), status=STATUS),
        "longest_transaction": record(
            seconds=SECONDS, pid=nullable(INTEGER), state=nullable(STRING), status=STATUS
        ),
        "blocked": record(count=INTEGER, status=STATUS),
        "wal_rate": record(value=nullable(NUMBER), standby=BOOLEAN, status=STATUS),
        "pending_restart": record(settings=array(STRING), status=STATUS),
    },
)


@blueprint.app_context_processor
def layout_context():
    """What the layout shows on every page: the navigation and which instance
    this Sentinel watches (the sign-in page names it)."""
    pool = postgres.pool
    return {
        "nav": current_app.extensions["sentinel.nav"],
        "instance_name": settings()["hostname"],
        "postgres_address": f"{pool.host or 'localhost'}:{pool.port}",
    }


@blueprint.get("/")
@describe("Sends browsers to the web UI", answers={302: None})
def index():
    return redirect(url_for("home.home"))


def measure_health():
    return health.measure(postgres.pool, redis.samples, settings(), time.time())


@blueprint.get("/ui/")
@signed_in
@describe("Home: the instance's health at a glance and the latest notifications", answers=PAGE)
def home():
    return render_template(
        "home.html",
        health=measure_health(),
        machine=host.static_facts(),
        notifications=notifications.recent(limit=10),
    )


@blueprint.get("/ui/health")
@signed_in
@describe(
    "The home page's figures, each with its status, read now",
    answers={200: HEALTH},
    description="While PostgreSQL is down, `up` is false, `reason` says why and only"
    " `collectors` is measured. Rates (`tps`, `wal_rate`) are over the time since the"
    " previous reading, null on the first.",
)
def health_figures():
    return jsonify(measure_health())


@blueprint.get("/ui/api")
@signed_in
@describe("The API reference, rendered from /openapi.json", answers=PAGE)
def api_reference():
    return render_template("api.html")
