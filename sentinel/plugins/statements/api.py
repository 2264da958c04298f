"""Statements plugin API: pg_stat_statements read now, and the totals of a
window of the collector's history."""

import json

from flask import Blueprint, current_app, stream_with_context

from ...auth.access import session_required
from ...contract import BOOLEAN, INTEGER, NUMBER, STRING, array, describe, nullable, record
from ...extensions import postgres
from ...state import utcnow
from . import statements

blueprint = Blueprint("statements", __name__, url_prefix="/statements")

MOMENT = {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$"}
OID = INTEGER
# The columns every supported version has, under both namings; the others of
# the running version come beside them.
ENTRY = record(
    rolname=nullable(STRING),
    datname=nullable(STRING),
    userid=OID,
    dbid=OID,
    queryid=nullable(INTEGER),
    query=nullable(STRING),
    calls=INTEGER,
    total_exec_time=NUMBER,
    min_exec_time=NUMBER,
    max_exec_time=NUMBER,
    mean_exec_time=NUMBER,
    stddev_exec_time=NUMBER,
    total_time=NUMBER,
    min_time=NUMBER,
    max_time=NUMBER,
    mean_time=NUMBER,
    stddev_time=NUMBER,
    rows=INTEGER,
    shared_blks_hit=INTEGER,
    shared_blks_read=INTEGER,
)
TOTALS = record(
    {
        "queryid": INTEGER,
        "dbid": OID,
        "datname": nullable(STRING),
        "userid": OID,
        "rolname": nullable(STRING),
        "toplevel": BOOLEAN,
        "query": STRING,
        **{name: NUMBER for name in statements.COUNTERS},
        "total_time": NUMBER,
        "mean_exec_time": nullable(NUMBER),
        "mean_time": nullable(NUMBER),
        "hit_ratio": nullable(NUMBER),
    }
)
WINDOW = record(
    start=nullable(STRING),
    end=STRING,
    snapshots=INTEGER,
    first=nullable(STRING),
    last=nullable(STRING),
)


def json_stream(parts):
    """An answer sent as its parts come."""
    return current_app.response_class(parts, mimetype="application/json")


@blueprint.get("")
@session_required(key=True)
@describe(
    "The statistics of pg_stat_statements now, every database",
    answers={200: record(snapshot_datetime=STRING, data=array(ENTRY))},
    errors=(404, 503, 504),
    description="Every column of the running PostgreSQL's pg_stat_statements, with `rolname`"
    " and `datname`, and the times under both namings (`total_time` is `total_exec_time`,"
    " and so on). 404 when the extension is not installed in the main database or not"
    " loaded.",
)
def latest():
    return json_stream(statements.latest(postgres.pool))


@blueprint.get("/history")
@session_required(key=True)
@describe(
    "Per-statement totals over a window of the collected history, the busiest first",
    query={"start": MOMENT, "end": MOMENT},
    answers={200: record(WINDOW["properties"], data=array(TOTALS))},
    errors=(400,),
    description="The deltas of the snapshots taken after `start` and up to `end` (UTC,"
    " `YYYY-MM-DDTHH:MM:SSZ`): all that is kept without `start`, up to now without `end`."
    " Only statements that ran in the window are listed.",
)
def history(start, end):
    start = statements.parse_moment("start", start)
    end = statements.parse_moment("end", end) or utcnow()
    rows = statements.history(start, end)
    head = {
        "start": start.strftime(statements.MOMENT) if start else None,
        "end": end.strftime(statements.MOMENT),
        **statements.window(start, end),
    }

    def parts():
        yield json.dumps(head, separators=(",", ":"))[:-1] + ',"data":['
        separator = ""
        for row in rows:
            yield separator + json.dumps(row, separators=(",", ":"))
            separator = ","
        yield "]}"

    return json_stream(stream_with_context(parts()))
