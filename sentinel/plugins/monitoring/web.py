"""The Monitoring page: one chart per probe over the collector's kept runs."""

from flask import Blueprint, jsonify, render_template

from ...auth.access import settings, signed_in
from ...contract import ANY, HTML, INTEGER, STRING, array, describe, nullable, record
from . import monitoring

blueprint = Blueprint(
    "monitoring_ui",
    __name__,
    url_prefix="/ui/monitoring",
    template_folder="templates",
    static_folder="static",
)

CHART = record(
    probe=STRING,
    title=STRING,
    unit=STRING,
    labels=array(STRING),
    data=array(array(ANY)),
)
AFTER = {"type": "integer", "minimum": 0, "maximum": 10**18}


@blueprint.get("/")
@signed_in
@describe("The Monitoring page", answers={200: (HTML, STRING)})
def page():
    return render_template(
        "monitoring.html",
        charts=monitoring.CHARTS,
        interval=settings()["monitoring_interval"],
    )


@blueprint.get("/data")
@signed_in
@describe(
    "Chart series of the kept runs; those after run id `after` only with it",
    query={"after": AFTER},
    answers={
        200: record(
            last=nullable(INTEGER),
            oldest=nullable(INTEGER),
            kept=INTEGER,
            charts=array(CHART),
        )
    },
)
def data(after):
    return jsonify(monitoring.charts_of_kept_runs(after))
