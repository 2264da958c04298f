"""The Dashboard page: charts of the collected samples, refreshed in place."""

import time

from flask import Blueprint, jsonify, render_template

from ... import time_ranges
from ...auth.access import settings, signed_in
from ...contract import HTML, NUMBER, STRING, array, describe, nullable, record
from . import dashboard

blueprint = Blueprint(
    "dashboard_ui",
    __name__,
    url_prefix="/ui/dashboard",
    template_folder="templates",
    static_folder="static",
)

POINT = record(
    time=NUMBER,
    cpu=record(user=NUMBER, system=NUMBER, iowait=NUMBER),
    memory=record(active=NUMBER, cached=NUMBER),
    loadaverage=NUMBER,
    tps=nullable(NUMBER),
    hitratio=nullable(NUMBER),
    active_backends=nullable(NUMBER),
)
SINCE = {"type": "number", "minimum": 0, "exclusiveMaximum": 1e11}


def kept_seconds():
    """How far back the kept samples go: the history's length times the interval."""
    return settings()["dashboard_history"] * settings()["dashboard_interval"]


@blueprint.get("/")
@signed_in
@describe(
    "The Dashboard page, showing the last `range` seconds (all that is kept without it)",
    query={"range": time_ranges.RANGE},
    answers={200: (HTML, STRING)},
)
def page(range):
    return render_template(
        "dashboard.html",
        facts=dashboard.headline(dashboard.last_sample()),
        config=dashboard.config(settings()),
        ranges=time_ranges.offered(kept_seconds()),
        range=time_ranges.chosen(range, kept_seconds()),
    )


@blueprint.get("/data")
@signed_in
@describe(
    "The chart points of the samples of the last `range` seconds (all kept without it),"
    " those taken after `since` (epoch seconds) only with it; `now` is the server's clock",
    query={"since": SINCE, "range": time_ranges.RANGE},
    answers={200: record(points=array(POINT), now=NUMBER)},
)
def data(since, range):
    now = time.time()
    start = now - time_ranges.chosen(range, kept_seconds())
    since = start if since is None else max(since, start)
    return jsonify(points=dashboard.chart_points(settings(), since), now=now)
