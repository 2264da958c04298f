"""The Monitoring page: one chart per probe over the collector's kept runs."""

from flask import Blueprint, jsonify, render_template

from ... import time_ranges
from ...auth.access import settings, signed_in
from ...contract import ANY, HTML, INTEGER, STRING, array, describe, nullable, record
from . import charts

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
    kind={
        "enum": [
            charts.COUNT,
            charts.PERCENT,
            charts.BYTES,
            charts.RATE,
            charts.PER_SECOND,
            charts.NUMBER,
        ]
    },
    labels=array(STRING),
    data=array(array(ANY)),
    note=nullable(STRING),
)
AFTER = {"type": "integer", "minimum": 0, "maximum": 10**18}


def kept_seconds():
    return settings()["monitoring_retention"]


@blueprint.get("/")
@signed_in
@describe(
    "The Monitoring page, showing the last `range` seconds (all that is kept without it)",
    query={"range": time_ranges.RANGE},
    answers={200: (HTML, STRING)},
)
def page(range):
    return render_template(
        "monitoring.html",
        charts=charts.CHARTS,
        interval=settings()["monitoring_interval"],
        ranges=time_ranges.offered(kept_seconds()),
        range=time_ranges.chosen(range, kept_seconds()),
    )


@blueprint.get("/data")
@signed_in
@describe(
    "Chart series of the runs kept in the last `range` seconds (all that is kept without it);"
    " those after run id `after` only with it",
    query={"after": AFTER, "range": time_ranges.RANGE},
    answers={
        200: record(
            last=nullable(INTEGER),
            last_at=nullable(INTEGER),
            since=INTEGER,
            kept=INTEGER,
            now=INTEGER,
            charts=array(CHART),
        )
    },
)
def data(after, range):
    return jsonify(charts.of_kept_runs(time_ranges.chosen(range, kept_seconds()), after))
