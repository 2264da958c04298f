"""The Dashboard page: charts of the collected samples, refreshed in place."""

from flask import Blueprint, jsonify, render_template

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


@blueprint.get("/")
@signed_in
@describe("The Dashboard page", answers={200: (HTML, STRING)})
def page():
    return render_template(
        "dashboard.html",
        facts=dashboard.headline(dashboard.last_sample()),
        config=dashboard.config(settings()),
    )


@blueprint.get("/data")
@signed_in
@describe(
    "The chart points of the samples taken after `since` (epoch seconds; all without it)",
    query={"since": SINCE},
    answers={200: record(points=array(POINT))},
)
def data(since):
    return jsonify(points=dashboard.chart_points(settings(), since))
