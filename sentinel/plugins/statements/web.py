"""The Statements page: the busiest statements over a window of the history,
or since the last reset, sortable and filtered by database."""

import datetime

from flask import Blueprint, jsonify, render_template

from ...auth.access import settings, signed_in
from ...contract import HTML, INTEGER, NUMBER, STRING, array, describe, nullable, record
from ...extensions import postgres
from ...state import utcnow
from . import statements

blueprint = Blueprint(
    "statements_ui",
    __name__,
    url_prefix="/ui/statements",
    template_folder="templates",
    static_folder="static",
)

WINDOWS = (3600, 6 * 3600, 24 * 3600, 7 * 24 * 3600)  # seconds
SINCE_RESET = 0
RANGE = {"type": "integer", "minimum": 0, "maximum": 10**8}
ROW = record(
    key=STRING,
    datname=nullable(STRING),
    rolname=nullable(STRING),
    query=nullable(STRING),
    calls=INTEGER,
    total_exec_time=NUMBER,
    mean_exec_time=nullable(NUMBER),
    rows=INTEGER,
    hit_ratio=nullable(NUMBER),
    temp_blks_written=INTEGER,
)


def offered():
    """The windows worth offering: those the retention keeps, then since the reset."""
    kept = settings()["statements_retention"]
    return [seconds for seconds in WINDOWS if seconds <= kept] + [SINCE_RESET]


def chosen(requested):
    return requested if requested in offered() else WINDOWS[0]


@blueprint.get("/")
@signed_in
@describe(
    "The Statements page, over the last `range` seconds of the history (0: since the last reset)",
    query={"range": RANGE},
    answers={200: (HTML, STRING)},
)
def page(range):
    return render_template(
        "statements.html",
        ranges=offered(),
        range=chosen(range),
        config=statements.config(settings()),
    )


@blueprint.get("/data")
@signed_in
@describe(
    "The page's rows: totals over the last `range` seconds of the history, or since the last"
    " reset (read now) with `range=0`",
    query={"range": RANGE},
    answers={
        200: record(
            range=INTEGER,
            snapshots=nullable(INTEGER),
            first=nullable(STRING),
            last=nullable(STRING),
            rows=array(ROW),
        )
    },
    errors=(404, 503, 504),
)
def data(range):
    range = chosen(range)
    if range == SINCE_RESET:
        return jsonify(
            range=range,
            snapshots=None,
            first=None,
            last=None,
            rows=statements.since_reset(postgres.pool),
        )
    end = utcnow()
    start = end - datetime.timedelta(seconds=range)
    return jsonify(
        range=range,
        **statements.window(start, end),
        rows=statements.page_rows(start, end),
    )
