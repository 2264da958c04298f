"""The Maintenance pages: databases (with wraparound), schemas and tables with
their sizes and bloat, VACUUM / ANALYZE / REINDEX now or later after a
confirmation that says what it will lock, and the jobs with their progress."""

from flask import Blueprint, jsonify, render_template
from flask_login import current_user

from ...auth.access import signed_in
from ...contract import HTML, INTEGER, NUMBER, STRING, array, describe, nullable, record
from ...extensions import postgres, redis
from . import insight, operations, preview
from .api import DATABASE, INSTANCE, JOB, JOB_ID, OK, SCHEMA, TABLE, identity

blueprint = Blueprint(
    "maintenance_ui",
    __name__,
    url_prefix="/ui/maintenance",
    template_folder="templates",
    static_folder="static",
)

NAME = {"type": "string", "minLength": 1, "maxLength": 63}
TARGET = {"db": NAME, "schema": NAME, "table": NAME, "index": NAME}
OPERATION = {"enum": list(operations.OPERATIONS)}
RUN = record(
    {"operation": OPERATION, "db": NAME},
    optional={"schema": NAME, "table": NAME, "index": NAME, "mode": STRING, "datetime": STRING},
)
PREVIEW = record(
    lock=STRING,
    effect=STRING,
    size=nullable(INTEGER),
    blockers=array(
        record(
            pid=INTEGER,
            mode=STRING,
            user=nullable(STRING),
            state=nullable(STRING),
            xact_age=nullable(NUMBER),
            query=nullable(STRING),
        )
    ),
)
ERRORS = (404, 503, 504)


def _page(level, **names):
    return render_template("maintenance.html", level=level, names=names)


@blueprint.get("/")
@signed_in
@describe(
    "The Maintenance page: the databases (with wraparound), or one database's"
    " schemas, a schema's tables, a table, as the query names",
    query={"db": NAME, "schema": NAME, "table": NAME},
    answers={200: (HTML, STRING)},
)
def page(db=None, schema=None, table=None):
    # Names go in the query, not the path: a page is one page whatever it shows.
    if db is None:
        return _page("instance")
    if schema is None:
        return _page("database", db=db)
    if table is None:
        return _page("schema", db=db, schema=schema)
    return _page("table", db=db, schema=schema, table=table)


@blueprint.get("/jobs")
@signed_in
@describe("The maintenance jobs, waiting, running and recent", answers={200: (HTML, STRING)})
def jobs_page():
    return _page("jobs")


@blueprint.get("/data")
@signed_in
@describe(
    "What a Maintenance page shows: the instance, a database, a schema or a table",
    query={"db": NAME, "schema": NAME, "table": NAME},
    answers={200: {"anyOf": [INSTANCE, DATABASE, SCHEMA, TABLE]}},
    errors=ERRORS,
)
def data(db=None, schema=None, table=None):
    pool = postgres.pool
    if db is None:
        return jsonify(insight.instance(pool, redis.samples, identity()))
    if schema is None:
        return jsonify(insight.database(pool, db))
    if table is None:
        return jsonify(insight.schema(pool, db, schema))
    return jsonify(insight.table(pool, db, schema, table))


@blueprint.get("/jobs/data")
@signed_in
@describe(
    "Waiting and running jobs, then the latest finished, running ones with their progress",
    answers={200: record(jobs=array(JOB))},
    errors=(503, 504),
)
def jobs_data():
    rows = operations.recent_jobs()
    for row in rows:
        row["progress"] = None
        if row["status"] == "doing":
            row["progress"] = operations.job_with_progress(postgres.pool, row["id"])["progress"]
    return jsonify(jobs=rows)


@blueprint.get("/preview")
@signed_in
@describe(
    "Before an operation: the lock it takes, the relation's size, who holds it up now",
    query={"operation": OPERATION, "mode": STRING, **TARGET},
    answers={200: PREVIEW},
    errors=(404, 406, 503, 504),
)
def preview_operation(operation=None, mode=None, db=None, schema=None, table=None, index=None):
    if operation is None or db is None:
        from ...errors import NotSent

        raise NotSent("operation" if operation is None else "db")
    return jsonify(
        preview.preview(postgres.pool, db, schema, operation, mode, table=table, index=index)
    )


@blueprint.post("/run")
@signed_in(admin=True)
@describe(
    "VACUUM, ANALYZE or REINDEX from the page, now or at `datetime` (UTC)",
    body=RUN,
    answers={200: JOB_ID},
    errors=(404, 409, 503, 504),
)
def run(body):
    operation = body["operation"]
    mode = operations.parse_mode(operation, body.get("mode"))
    when = operations.parse_datetime(body.get("datetime"))
    try:
        ident = operations.request(
            postgres.pool,
            redis.connection,
            current_user.username,
            operation,
            body["db"],
            mode=mode,
            when=when,
            schema=body.get("schema"),
            table=body.get("table"),
            index=body.get("index"),
        )
    except operations.Duplicate as exc:
        return jsonify(error=exc.message, id=exc.job_id), 409
    return jsonify(id=ident)


@blueprint.post("/cancel")
@signed_in(admin=True)
@describe(
    "Cancel a waiting job from the page",
    body=record(id=STRING),
    answers={200: OK},
    errors=(404, 409, 503),
)
def cancel(body):
    operations.cancel(redis.connection, current_user.username, body["id"])
    return jsonify(response="ok")
