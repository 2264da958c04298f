"""Maintenance plugin API: sizes and bloat of databases, schemas, tables and
indexes; VACUUM, ANALYZE and REINDEX now or at a time; their lists, their
cancellation, and a job's progress."""

from flask import Blueprint, g, jsonify

from ...auth.access import session_required, settings
from ...contract import (
    BOOLEAN,
    INTEGER,
    NUMBER,
    STRING,
    array,
    describe,
    nullable,
    record,
)
from ...extensions import postgres, redis
from . import insight, operations

blueprint = Blueprint("maintenance", __name__, url_prefix="/maintenance")


def for_each_operation(rule, method, operations_=operations.OPERATIONS):
    """Register a view under `rule` once per operation, its name in the path
    (so /openapi.json lists each path as the agent documents it)."""

    def decorator(view):
        for operation in operations_:
            blueprint.add_url_rule(
                rule.format(operation=operation),
                endpoint=view.__name__,
                view_func=view,
                methods=[method],
                defaults={"operation": operation},
            )
        return view

    return decorator


POSTGRES_ERRORS = (404, 503, 504)
SIZE = nullable(STRING)
BYTES = nullable(NUMBER)

WRAPAROUND = record(
    xid_age=INTEGER,
    mxid_age=INTEGER,
    autovacuum_freeze_max_age=INTEGER,
    autovacuum_multixact_freeze_max_age=INTEGER,
    xid_stop_limit=INTEGER,
    xids_to_forced_vacuum=INTEGER,
    xids_to_shutdown=INTEGER,
    xid_rate=nullable(NUMBER),
    seconds_to_forced_vacuum=nullable(NUMBER),
    seconds_to_shutdown=nullable(NUMBER),
)
TOTALS = {
    "n_tables": NUMBER,
    "n_indexes": NUMBER,
    "tables_bytes": NUMBER,
    "tables_size": SIZE,
    "toast_bytes": NUMBER,
    "toast_size": SIZE,
    "indexes_bytes": NUMBER,
    "indexes_size": SIZE,
    "tables_bloat_bytes": BYTES,
    "tables_bloat_size": SIZE,
    "indexes_bloat_bytes": BYTES,
    "indexes_bloat_size": SIZE,
    "total_bytes": INTEGER,
    "total_size": SIZE,
}
INSTANCE = record(
    databases=array(record(datname=STRING, wraparound=WRAPAROUND, **TOTALS)),
    instance=record(total_bytes=NUMBER, total_size=SIZE),
)
DATABASE = record(
    schemas=array(record(name=STRING, **TOTALS)),
    total_bytes=INTEGER,
    total_size=SIZE,
)
INDEX = record(
    bloat_bytes=BYTES,
    bloat_size=SIZE,
    indexrelname=STRING,
    name=STRING,
    tablename=STRING,
    tablespace=nullable(STRING),
    total_bytes=INTEGER,
    total_size=SIZE,
    type=STRING,
    indisunique=BOOLEAN,
    number_of_columns=INTEGER,
    scans=INTEGER,
    idx_tup_read=INTEGER,
    idx_tup_fetch=INTEGER,
    **{"def": STRING},
)
TABLE_SIZES = {
    "bloat_bytes": BYTES,
    "bloat_size": SIZE,
    "index_bloat_bytes": BYTES,
    "index_bloat_size": SIZE,
    "index_bytes": INTEGER,
    "index_size": SIZE,
    "n_indexes": INTEGER,
    "name": STRING,
    "row_estimate": NUMBER,
    "table_bytes": INTEGER,
    "table_size": SIZE,
    "toast_bytes": INTEGER,
    "toast_size": SIZE,
    "total_bytes": INTEGER,
    "total_size": SIZE,
}
SCHEMA = record(
    indexes=array(INDEX),
    tables=array(record(TABLE_SIZES)),
    size=SIZE,
    total_bytes=INTEGER,
)
COUNT = nullable(INTEGER)
TABLE = record(
    TABLE_SIZES,
    relid=INTEGER,
    relname=STRING,
    schemaname=STRING,
    fillfactor=INTEGER,
    indexes=array(INDEX),
    last_vacuum=nullable(STRING),
    last_autovacuum=nullable(STRING),
    last_analyze=nullable(STRING),
    last_autoanalyze=nullable(STRING),
    vacuum_count=COUNT,
    autovacuum_count=COUNT,
    analyze_count=COUNT,
    autoanalyze_count=COUNT,
    n_live_tup=COUNT,
    n_dead_tup=COUNT,
)
# What an operation takes: both optional; mode only means something for VACUUM.
REQUEST = record(optional={"datetime": STRING, "mode": STRING})
JOB_ID = record(id={"type": "string", "pattern": "^[0-9a-f]{8}$"})
STATUS = {"enum": ["todo", "doing", "done", "failed", "canceled"]}
LISTED = record(
    datetime=STRING,
    dbname=STRING,
    id=STRING,
    index=nullable(STRING),
    mode=nullable(STRING),
    schema=nullable(STRING),
    status=STATUS,
    table=nullable(STRING),
)
PROGRESS = record(
    command=STRING,
    phase=STRING,
    done=nullable(INTEGER),
    total=nullable(INTEGER),
    unit=STRING,
)
JOB = record(
    LISTED["properties"],
    operation=STRING,
    requested_by=nullable(STRING),
    requested_at=STRING,
    started_at=nullable(STRING),
    finished_at=nullable(STRING),
    output=nullable(STRING),
    error=nullable(STRING),
    progress=nullable(PROGRESS),
)
OK = record(response={"const": "ok"})
WRITE_ERRORS = (404, 409, 503, 504)


def identity():
    return postgres.pool.identity(settings()["hostname"])


# -- insight ---------------------------------------------------------------------------


@blueprint.get("")
@session_required(key=True)
@describe(
    "Every database with its sizes, estimated bloat and wraparound figures",
    answers={200: INSTANCE},
    errors=(503, 504),
)
def instance():
    return jsonify(insight.instance(postgres.pool, redis.samples, identity()))


@blueprint.get("/<dbname>")
@session_required(key=True)
@describe(
    "The schemas of a database, with their sizes and estimated bloat",
    answers={200: DATABASE},
    errors=POSTGRES_ERRORS,
)
def database(dbname):
    return jsonify(insight.database(postgres.pool, dbname))


@blueprint.get("/<dbname>/schema/<schema>")
@session_required(key=True)
@describe(
    "The tables of a schema and every index of theirs, with sizes and estimated bloat",
    answers={200: SCHEMA},
    errors=POSTGRES_ERRORS,
)
def schema(dbname, schema):
    return jsonify(insight.schema(postgres.pool, dbname, schema))


@blueprint.get("/<dbname>/schema/<schema>/table/<table>")
@session_required(key=True)
@describe(
    "One table: its sizes, statistics, indexes and estimated bloat",
    answers={200: TABLE},
    errors=POSTGRES_ERRORS,
)
def table(dbname, schema, table):
    return jsonify(insight.table(postgres.pool, dbname, schema, table))


# -- operations ------------------------------------------------------------------------


def _request(operation, body, dbname, **target):
    mode = operations.parse_mode(operation, body.get("mode"))
    when = operations.parse_datetime(body.get("datetime"))
    try:
        ident = operations.request(
            postgres.pool,
            redis.connection,
            g.username,
            operation,
            dbname,
            mode=mode,
            when=when,
            **target,
        )
    except operations.Duplicate as exc:
        return jsonify(error=exc.message, id=exc.job_id), 409
    return jsonify(id=ident)


@for_each_operation("/<dbname>/{operation}", "POST")
@session_required(admin=True)
@describe(
    "VACUUM, ANALYZE or REINDEX a whole database, now or at `datetime` (UTC)",
    body=REQUEST,
    answers={200: JOB_ID},
    errors=WRITE_ERRORS,
)
def database_operation(dbname, operation, body):
    return _request(operation, body, dbname)


@for_each_operation("/<dbname>/schema/<schema>/table/<table>/{operation}", "POST")
@session_required(admin=True)
@describe(
    "VACUUM, ANALYZE or REINDEX a table, now or at `datetime` (UTC)",
    body=REQUEST,
    answers={200: JOB_ID},
    errors=WRITE_ERRORS,
)
def table_operation(dbname, schema, table, operation, body):
    return _request(operation, body, dbname, schema=schema, table=table)


@blueprint.post("/<dbname>/schema/<schema>/index/<index>/reindex")
@session_required(admin=True)
@describe(
    "REINDEX an index, now or at `datetime` (UTC)",
    body=REQUEST,
    answers={200: JOB_ID},
    errors=WRITE_ERRORS,
)
def index_reindex(dbname, schema, index, body):
    return _request("reindex", body, dbname, schema=schema, index=index)


@for_each_operation("/{operation}/<job_id>", "DELETE")
@session_required(admin=True)
@describe(
    "Cancel a job that has not started",
    answers={200: OK},
    errors=(404, 409, 503),
)
def cancel(operation, job_id):
    operations.cancel(redis.connection, g.username, job_id)
    return jsonify(response="ok")


# -- lists -----------------------------------------------------------------------------


@for_each_operation("/{operation}/scheduled", "GET")
@session_required(key=True)
@describe(
    "Jobs of an operation waiting, running or just finished, in every database",
    answers={200: array(LISTED)},
    errors=(503,),
)
def scheduled(operation):
    return jsonify(operations.scheduled(operation))


@for_each_operation("/<dbname>/{operation}/scheduled", "GET")
@session_required(key=True)
@describe(
    "Jobs of an operation on a database (whole or any part of it)",
    answers={200: array(LISTED)},
    errors=(503,),
)
def database_scheduled(dbname, operation):
    return jsonify(operations.scheduled(operation, dbname))


@blueprint.get("/<dbname>/schema/<schema>/reindex/scheduled")
@session_required(key=True)
@describe(
    "REINDEX jobs on a schema's tables and indexes",
    answers={200: array(LISTED)},
    errors=(503,),
)
def schema_reindex_scheduled(dbname, schema):
    return jsonify(operations.scheduled("reindex", dbname, schema))


@for_each_operation("/<dbname>/schema/<schema>/table/<table>/{operation}/scheduled", "GET")
@session_required(key=True)
@describe(
    "Jobs of an operation on one table",
    answers={200: array(LISTED)},
    errors=(503,),
)
def table_scheduled(dbname, schema, table, operation):
    return jsonify(operations.scheduled(operation, dbname, schema, table))


@blueprint.get("/job/<job_id>")
@session_required(key=True)
@describe(
    "One job with its output, and its progress while it runs",
    answers={200: JOB},
    errors=(404, 503, 504),
)
def job(job_id):
    return jsonify(operations.job_with_progress(postgres.pool, job_id))
