"""VACUUM, ANALYZE and REINDEX as jobs: asked for now or at a time, kept as rows
of Sentinel's state, run by the RQ worker, cancelled, listed, watched.

A job's id is derived from what it does, on what, and when, so the same work
asked twice is one job. The row is the truth; Redis only carries the job to a
worker at its time, and reconcile() puts back what Redis lost and fails what
a dead worker left half done.
"""

import datetime
import hashlib
import logging
import os
import re
import socket

import peewee
import psycopg2
import psycopg2.extensions
import redis
from psycopg2 import sql
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

from ... import jobs
from ...core import notifications
from ...errors import Conflict, Malformed, NotFound
from ...postgres import sql_folder
from ...state import utcnow
from . import insight
from .models import CANCELED, DOING, DONE, FAILED, FINISHED, TODO, MaintenanceJob

logger = logging.getLogger(__name__)

SQL = sql_folder(__file__)
OPERATIONS = ("vacuum", "analyze", "reindex")
VACUUM_MODES = ("full", "freeze", "analyze")
DATETIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
_JOB_ID = re.compile(r"[0-9a-f]{8}")
_DATETIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
JOB_TIMEOUT = 6 * 3600  # s: a VACUUM FULL of a large table takes hours
RECENT = datetime.timedelta(minutes=10)  # finished jobs stay listed this long
APPLICATION_NAME = "sentinel-maintenance"


class Duplicate(Conflict):
    """The same operation on the same target at the same time is already a job."""

    def __init__(self, job_id):
        super().__init__(f"Task {job_id} already exists")
        self.job_id = job_id


# -- what a request asks ------------------------------------------------------------


def parse_mode(operation, raw):
    """The vacuum mode as stored ("" when none); None for the other operations,
    which have none (a mode sent with them is ignored, as the agent does)."""
    if operation != "vacuum":
        return None
    if raw is None or raw == "":
        return ""
    if not isinstance(raw, str):
        raise Malformed("mode")
    words = raw.split(",")
    if any(word not in VACUUM_MODES for word in words) or len(set(words)) != len(words):
        raise Malformed("mode")
    return ",".join(word for word in VACUUM_MODES if word in words)


def parse_datetime(raw, now=None):
    """When to run (naive UTC, to the second): `raw` as YYYY-MM-DDTHH:MM:SSZ,
    or now when it is absent or in the past."""
    now = (now or utcnow()).replace(microsecond=0)
    if raw is None:
        return now
    if not isinstance(raw, str) or not _DATETIME.fullmatch(raw):
        raise Malformed("datetime")
    try:
        when = datetime.datetime.strptime(raw, DATETIME_FORMAT)
    except ValueError:
        raise Malformed("datetime") from None
    return max(when, now)


def job_id(operation, dbname, schema, table, index, when):
    """8 hex digits naming this operation on this target at this time."""
    target = "\x1f".join(part or "" for part in (dbname, schema, table, index))
    text = f"{operation}\x1e{target}\x1e{when.strftime(DATETIME_FORMAT)}"
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def rq_job_id(job_id):
    return f"maintenance-{job_id}"


def describe_target(job):
    if job.index_name:
        return f"index {job.schema_name}.{job.index_name} of database {job.dbname}"
    if job.table_name:
        return f"table {job.schema_name}.{job.table_name} of database {job.dbname}"
    return f"database {job.dbname}"


def _title(job):
    mode = f" ({job.mode})" if job.mode else ""
    return f"{job.operation.upper()}{mode} of {describe_target(job)}"


# -- asking, cancelling, listing ------------------------------------------------------


def check_target(pool, dbname, schema=None, table=None, index=None):
    """NotFound unless the database, and the table or index, exist."""
    insight.check_database(pool, dbname)
    insight.check_names(schema, table, index)
    if table is None and index is None:
        return

    def look(conn):
        kinds = ("r", "m") if table is not None else ("i",)
        return conn.queryscalar(
            "SELECT true FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = %s AND c.relname = %s AND c.relkind = ANY(%s::char[])",
            (schema, table or index, list(kinds)),
        )

    if not pool.run(look, dbname):
        kind = "Table" if table is not None else "Index"
        raise NotFound(f"{kind} {schema}.{table or index} not found")


def request(pool, connection, username, operation, dbname, **target):
    """Make the job a row, hand it to RQ (for now, or for its time), record
    the request; its id. Duplicate when the same job is waiting or running."""
    schema, table, index = target.get("schema"), target.get("table"), target.get("index")
    mode, when = target.get("mode"), target["when"]
    check_target(pool, dbname, schema, table, index)
    ident = job_id(operation, dbname, schema, table, index, when)
    fields = {
        "operation": operation,
        "dbname": dbname,
        "schema_name": schema,
        "table_name": table,
        "index_name": index,
        "mode": mode,
        "scheduled_at": when,
        "status": TODO,
        "requested_by": username,
        "requested_at": utcnow(),
        "started_at": None,
        "finished_at": None,
        "worker": None,
        "backend_pid": None,
        "output": None,
        "error": None,
    }
    try:
        MaintenanceJob.create(id=ident, **fields)
    except peewee.IntegrityError:
        # Asked before: a finished job of the same id is asked again.
        replaced = (
            MaintenanceJob.update(**fields)
            .where(MaintenanceJob.id == ident, MaintenanceJob.status.in_(FINISHED))
            .execute()
        )
        if not replaced:
            raise Duplicate(ident) from None
    job = MaintenanceJob.get_by_id(ident)
    at = "now" if when <= utcnow() else f"at {when.strftime(DATETIME_FORMAT)}"
    notifications.record(username, f"{_title(job)} requested ({ident}, {at})")
    submit(connection, job)
    return ident


def submit(connection, job):
    """Hand a waiting job to RQ; a Redis that is down gets it at the next reconcile."""
    from .tasks import run_job

    when = job.scheduled_at.replace(tzinfo=datetime.UTC)
    at = when if job.scheduled_at > utcnow() else None
    try:
        jobs.enqueue(
            connection, run_job, job.id, job_id=rq_job_id(job.id), timeout=JOB_TIMEOUT, at=at
        )
    except redis.RedisError as exc:
        logger.warning("event=maintenance_enqueue_failed job=%s error=%s", job.id, exc)


def find(job_id):
    """The job of this id, or NotFound."""
    job = None
    if _JOB_ID.fullmatch(job_id):
        job = MaintenanceJob.get_or_none(MaintenanceJob.id == job_id)
    if job is None:
        raise NotFound(f"Task {job_id} not found")
    return job


def cancel(connection, username, job_id):
    """Cancel a job that has not started: NotFound, or Conflict when it runs or ran."""
    job = find(job_id)
    canceled = (
        MaintenanceJob.update(status=CANCELED, finished_at=utcnow())
        .where(MaintenanceJob.id == job_id, MaintenanceJob.status == TODO)
        .execute()
    )
    if not canceled:
        job = MaintenanceJob.get_by_id(job_id)
        raise Conflict(f"Task {job_id} is {job.status}: only a waiting task can be canceled")
    try:
        Job.fetch(rq_job_id(job_id), connection=connection, serializer=jobs.PlainValues).delete()
    except (NoSuchJobError, redis.RedisError):
        pass  # the job finds its row canceled when it comes, and does nothing
    notifications.record(username, f"{_title(job)} canceled ({job_id})")


def _utc(moment):
    return moment.strftime(DATETIME_FORMAT) if moment else None


def listed(job):
    """A job as the agent lists it."""
    return {
        "datetime": _utc(job.scheduled_at),
        "dbname": job.dbname,
        "id": job.id,
        "index": job.index_name,
        "mode": job.mode,
        "schema": job.schema_name,
        "status": job.status,
        "table": job.table_name,
    }


def scheduled(operation, dbname=None, schema=None, table=None):
    """Jobs of `operation` waiting or running, and those finished in the last
    minutes, filtered by what the path names; soonest first."""
    if any(name is not None and "\x00" in name for name in (dbname, schema, table)):
        return []  # no object has such a name, and no query could carry it
    query = MaintenanceJob.select().where(
        MaintenanceJob.operation == operation,
        (MaintenanceJob.status.in_((TODO, DOING)))
        | (MaintenanceJob.finished_at >= utcnow() - RECENT),
    )
    if dbname is not None:
        query = query.where(MaintenanceJob.dbname == dbname)
    if schema is not None:
        query = query.where(MaintenanceJob.schema_name == schema)
    if table is not None:
        query = query.where(MaintenanceJob.table_name == table)
    return [listed(job) for job in query.order_by(MaintenanceJob.scheduled_at, MaintenanceJob.id)]


def detail(job):
    """A job with everything Sentinel knows of it."""
    return {
        **listed(job),
        "operation": job.operation,
        "requested_by": job.requested_by,
        "requested_at": _utc(job.requested_at),
        "started_at": _utc(job.started_at),
        "finished_at": _utc(job.finished_at),
        "output": job.output,
        "error": job.error,
    }


def recent_jobs(limit=100):
    """Waiting and running jobs, then the latest finished ones."""
    pending = MaintenanceJob.select().where(MaintenanceJob.status.in_((TODO, DOING)))
    finished = (
        MaintenanceJob.select()
        .where(MaintenanceJob.status.in_(FINISHED))
        .order_by(MaintenanceJob.finished_at.desc())
        .limit(limit)
    )
    return [detail(job) for job in pending.order_by(MaintenanceJob.scheduled_at)] + [
        detail(job) for job in finished
    ]


def job_with_progress(pool, job_id):
    """GET /maintenance/job/<id>: the job, and while it runs, its progress as
    PostgreSQL reports it."""
    job = find(job_id)
    answer = detail(job)
    answer["progress"] = None
    if job.status == DOING and job.backend_pid:
        rows = pool.run(
            lambda conn: conn.query_file(SQL / "progress.sql", {"pid": job.backend_pid})
        )
        answer["progress"] = rows[0] if rows else None
    return answer


# -- running a job (in the worker) ----------------------------------------------------


def statement(job):
    """The statement a job runs: fixed words, and names only as identifiers."""
    if job.index_name:
        target = sql.Identifier(job.schema_name, job.index_name)
    elif job.table_name:
        target = sql.Identifier(job.schema_name, job.table_name)
    else:
        target = None
    if job.operation == "vacuum":
        words = [word.upper() for word in VACUUM_MODES if word in (job.mode or "").split(",")]
        options = sql.SQL(", ").join(sql.SQL(word) for word in [*words, "VERBOSE"])
        text = sql.SQL("VACUUM ({})").format(options)
    elif job.operation == "analyze":
        text = sql.SQL("ANALYZE VERBOSE")
    elif job.index_name:
        text = sql.SQL("REINDEX (VERBOSE) INDEX")
    elif job.table_name:
        text = sql.SQL("REINDEX (VERBOSE) TABLE")
    else:
        return sql.SQL("REINDEX (VERBOSE) DATABASE {}").format(sql.Identifier(job.dbname))
    return sql.SQL("{} {}").format(text, target) if target is not None else text


def worker_name():
    return f"{socket.gethostname()}:{os.getpid()}"


def run(dsn, lock_timeout, job_id):
    """Run a waiting job on its own connection (no statement timeout, the
    configured lock_timeout), recording its start, output and outcome."""
    started = (
        MaintenanceJob.update(status=DOING, started_at=utcnow(), worker=worker_name())
        .where(MaintenanceJob.id == job_id, MaintenanceJob.status == TODO)
        .execute()
    )
    if not started:
        logger.info("event=maintenance_job_skipped job=%s", job_id)
        return
    job = MaintenanceJob.get_by_id(job_id)
    logger.info("event=maintenance_job_started job=%s", job_id)
    conn = None
    try:
        conn = psycopg2.connect(
            psycopg2.extensions.make_dsn(dsn, dbname=job.dbname),
            application_name=APPLICATION_NAME,
        )
        conn.autocommit = True
        with conn.cursor() as cursor:
            cursor.execute("SELECT set_config('statement_timeout', '0', false)")
            cursor.execute("SELECT set_config('lock_timeout', %s, false)", (f"{lock_timeout}ms",))
            cursor.execute("SELECT pg_backend_pid()")
            pid = cursor.fetchone()[0]
            MaintenanceJob.update(backend_pid=pid).where(MaintenanceJob.id == job_id).execute()
            cursor.execute(statement(job))
    except psycopg2.errors.LockNotAvailable as exc:
        error = f"gave up waiting for a lock after lock_timeout ({lock_timeout} ms): {exc}"
        _finish(job, FAILED, conn, error.strip())
    except psycopg2.Error as exc:
        _finish(job, FAILED, conn, str(exc).strip() or type(exc).__name__)
    except Exception as exc:
        _finish(job, FAILED, conn, f"{type(exc).__name__}: {exc}")
        raise
    else:
        _finish(job, DONE, conn)
    finally:
        if conn is not None:
            conn.close()


def _finish(job, status, conn, error=None):
    output = "".join(conn.notices).strip() if conn is not None else ""
    MaintenanceJob.update(
        status=status, finished_at=utcnow(), output=output or None, error=error
    ).where(MaintenanceJob.id == job.id).execute()
    outcome = "done" if status == DONE else f"failed: {error}"
    notifications.record(job.requested_by or "sentinel", f"{_title(job)} {outcome} ({job.id})")
    logger.info("event=maintenance_job_finished job=%s status=%s", job.id, status)


# -- putting state and Redis back in step -----------------------------------------------


def _process_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _ended_in_rq(rq_job):
    """How RQ says the job ended without running to its end, or None."""
    if rq_job is None:
        return None
    status = rq_job.get_status(refresh=False)
    if status in (JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED):
        # The word itself: an f-string of a str Enum member gives "JobStatus.FAILED".
        return f"its job ended {JobStatus(status).value} in RQ"
    return None


def _dead_worker(job, rq_job):
    """Why a running job cannot be running any more, or None."""
    ended = _ended_in_rq(rq_job)
    if ended:
        return ended
    host, _, pid = (job.worker or "").rpartition(":")
    if host == socket.gethostname() and pid.isdigit():
        alive = _process_alive(int(pid))
        return None if alive else f"worker {job.worker} is dead"
    if rq_job is None:
        return "its job is gone from Redis"
    return None


def reconcile(connection):
    """Put waiting jobs Redis lost back on it; fail those RQ failed before
    they started, and the running ones whose worker died. Returns
    (resubmitted, failed) ids."""
    resubmitted, failed = [], []
    for job in MaintenanceJob.select().where(MaintenanceJob.status.in_((TODO, DOING))):
        try:
            rq_job = Job.fetch(
                rq_job_id(job.id), connection=connection, serializer=jobs.PlainValues
            )
        except NoSuchJobError:
            rq_job = None
        if job.status == TODO:
            if rq_job is None:
                submit(connection, job)
                resubmitted.append(job.id)
                continue
            reason = _ended_in_rq(rq_job)
            error = f"the job could not start ({reason})"
        elif job.worker == worker_name():
            continue  # this very process runs it
        else:
            reason = _dead_worker(job, rq_job)
            error = f"the worker stopped in the middle of the job ({reason})"
        if reason is None:
            continue
        gone = (
            MaintenanceJob.update(status=FAILED, finished_at=utcnow(), error=error)
            .where(MaintenanceJob.id == job.id, MaintenanceJob.status == job.status)
            .execute()
        )
        if gone:
            notifications.record(
                job.requested_by or "sentinel", f"{_title(job)} failed: {error} ({job.id})"
            )
            failed.append(job.id)
    return resubmitted, failed
