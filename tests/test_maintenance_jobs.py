"""VACUUM, ANALYZE and REINDEX run for real by a real worker process through a
real Redis: now and a few seconds ahead, cancelled, asked twice, watched as
they progress, stopped by a lock, by a killed worker, by RQ before they
started, and by a Redis that lost its data."""

import datetime
import os
import signal
import subprocess
import sys
import uuid

import pytest
from polling import wait_for
from psycopg2 import sql
from rq import Queue
from rq.job import Job, JobStatus, cancel_job
from rq.registry import FailedJobRegistry

from sentinel import jobs
from sentinel.dev import sandbox
from sentinel.extensions import connect_redis
from sentinel.plugins.maintenance import operations
from sentinel.plugins.maintenance.models import MaintenanceJob


@pytest.fixture(scope="module")
def redis_server():
    """Redis of the module's own: one test stops it and starts it empty."""
    server = sandbox.RedisServer().start()
    yield server
    server.stop()


@pytest.fixture
def db(pg_cluster):
    """A throwaway database with two tables, dropped after the test."""
    name = f"mjobs_{uuid.uuid4().hex[:10]}"
    pg_cluster.execute(f'CREATE DATABASE "{name}"')
    conn = pg_cluster.connect(name)
    conn.autocommit = True
    with conn.cursor() as cur:
        for table in ("t", "My Table"):
            cur.execute(
                f'CREATE TABLE "{table}" (id int PRIMARY KEY, v text)'
                " WITH (autovacuum_enabled = off)"
            )
            cur.execute(f'INSERT INTO "{table}" SELECT i, i::text FROM generate_series(1, 1000) i')
        cur.execute("CREATE TABLE victim (id int)")
        cur.execute('CREATE TABLE "x; DROP TABLE victim" (id int PRIMARY KEY)')
    conn.close()
    yield name
    pg_cluster.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
    )
    pg_cluster.execute(f'DROP DATABASE IF EXISTS "{name}"')


class Workers:
    """Real `python -m sentinel worker` processes, each in a process group of
    its own (the worker, its cron and RQ's scheduler), all stopped at the end."""

    def __init__(self, env, tmp_path):
        self.env = env
        self.tmp_path = tmp_path
        self.started = []

    def start(self, **extra):
        log = open(self.tmp_path / f"worker-{len(self.started)}.log", "wb")  # noqa: SIM115
        process = subprocess.Popen(
            [sys.executable, "-m", "sentinel", "worker"],
            env={**self.env, **extra},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.started.append((process, log))
        return process

    def kill(self, process):
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)

    def stop_all(self):
        for process, log in self.started:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(20)
                except subprocess.TimeoutExpired:
                    pass
            try:
                os.killpg(process.pid, signal.SIGKILL)  # what it left behind
            except ProcessLookupError:
                pass
            log.close()


@pytest.fixture
def workers(sentinel_env, tmp_path):
    pool = Workers(sentinel_env, tmp_path)
    yield pool
    pool.stop_all()


@pytest.fixture
def headers(auth):
    return auth.headers()


def status_of(app, job_id):
    with app.app_context():
        return MaintenanceJob.get_by_id(job_id)


def ended(app, job_id):
    job = status_of(app, job_id)
    return job if job.status in ("done", "failed", "canceled") else None


def table_stats(pg_cluster, dbname, table):
    conn = pg_cluster.connect(dbname)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT last_vacuum, last_analyze, vacuum_count, analyze_count"
                " FROM pg_stat_user_tables WHERE relname = %s",
                (table,),
            )
            return cur.fetchone()
    finally:
        conn.close()


def slow_to_vacuum(pg_cluster, dbname, table, pages):
    """A table of `pages` pages (a row each) in a database whose sessions sleep
    at every page a VACUUM reads: its heap scan takes a couple of seconds.
    Returns its size in pages."""
    names = {"table": sql.Identifier(table), "db": sql.Identifier(dbname)}
    conn = pg_cluster.connect(dbname)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            for statement in (
                "CREATE TABLE {table} (v text) WITH (autovacuum_enabled = off, fillfactor = 10)",
                "INSERT INTO {table} SELECT repeat('x', 600) FROM generate_series(1, %(pages)s)",
                "ALTER DATABASE {db} SET vacuum_cost_delay = '2ms'",
                "ALTER DATABASE {db} SET vacuum_cost_limit = 1",
            ):
                cur.execute(sql.SQL(statement).format(**names), {"pages": pages})
            cur.execute(
                "SELECT pg_relation_size(%s) / current_setting('block_size')::int", (table,)
            )
            return cur.fetchone()[0]
    finally:
        conn.close()


def in_seconds(seconds):
    moment = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=seconds)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_each_operation_now_and_scheduled_ends_done(app, client, headers, db, pg_cluster, workers):
    base = f"/maintenance/{db}/schema/public/table"
    asked = {
        "vacuum now": (f"{base}/t/vacuum", {"mode": "analyze"}),
        "analyze now": (f"{base}/My Table/analyze", {}),
        "reindex now": (f"/maintenance/{db}/schema/public/index/t_pkey/reindex", {}),
        "vacuum later": (f"{base}/My Table/vacuum", {"datetime": in_seconds(3)}),
        "analyze later": (f"{base}/t/analyze", {"datetime": in_seconds(3)}),
        "reindex db later": (f"/maintenance/{db}/reindex", {"datetime": in_seconds(3)}),
    }
    ids = {}
    for name, (path, body) in asked.items():
        answer = client.post(path, headers=headers, json=body)
        assert answer.status_code == 200, (name, answer.get_json())
        ids[name] = answer.get_json()["id"]
    assert all(len(ident) == 8 and int(ident, 16) >= 0 for ident in ids.values())
    listed = client.get(f"/maintenance/{db}/vacuum/scheduled", headers=headers).get_json()
    later = next(row for row in listed if row["id"] == ids["vacuum later"])
    assert later["status"] == "todo" and later["table"] == "My Table" and later["mode"] == ""

    workers.start()
    for name, ident in ids.items():
        job = wait_for(lambda ident=ident: ended(app, ident), timeout=30, what=name)
        assert job.status == "done", (name, job.error)
        if "later" in name:
            assert job.started_at >= job.scheduled_at
            assert (job.started_at - job.scheduled_at).total_seconds() < 5
    last_vacuum, last_analyze, _, _ = table_stats(pg_cluster, db, "t")
    assert last_vacuum is not None and last_analyze is not None
    last_vacuum, last_analyze, _, _ = table_stats(pg_cluster, db, "My Table")
    assert last_vacuum is not None and last_analyze is not None
    detail = client.get(f"/maintenance/job/{ids['vacuum now']}", headers=headers).get_json()
    assert detail["status"] == "done" and "vacuuming" in detail["output"].lower()
    with app.app_context():
        from sentinel.core import notifications

        messages = [row["message"] for row in notifications.recent()]
    assert any(ids["vacuum now"] in m and "requested" in m for m in messages)
    assert any(ids["vacuum now"] in m and "done" in m for m in messages)


def test_a_hostile_name_is_only_ever_a_name(app, client, headers, db, pg_cluster, workers):
    path = f"/maintenance/{db}/schema/public/table/x; DROP TABLE victim"
    ids = [
        client.post(f"{path}/{op}", headers=headers, json={}).get_json()["id"]
        for op in ("analyze", "reindex", "vacuum")
    ]
    workers.start()
    for ident in ids:
        job = wait_for(lambda ident=ident: ended(app, ident), timeout=30)
        assert job.status == "done", job.error
    conn = pg_cluster.connect(db)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT to_regclass('public.victim') IS NOT NULL")
            assert cur.fetchone()[0]
    finally:
        conn.close()


def test_a_waiting_job_is_canceled_once(app, client, headers, db):
    path = f"/maintenance/{db}/schema/public/table/t/analyze"
    ident = client.post(path, headers=headers, json={"datetime": in_seconds(3600)}).get_json()["id"]
    answer = client.delete(f"/maintenance/analyze/{ident}", headers=headers)
    assert answer.status_code == 200 and answer.get_json() == {"response": "ok"}
    listed = client.get(f"{path}/scheduled", headers=headers).get_json()
    assert [row["status"] for row in listed if row["id"] == ident] == ["canceled"]
    again = client.delete(f"/maintenance/analyze/{ident}", headers=headers)
    assert again.status_code == 409
    unknown = client.delete("/maintenance/analyze/00000000", headers=headers)
    assert unknown.status_code == 404


def test_the_same_job_asked_twice_is_409_with_its_id(client, headers, db):
    path = f"/maintenance/{db}/schema/public/table/t/vacuum"
    body = {"mode": "full", "datetime": in_seconds(3600)}
    first = client.post(path, headers=headers, json=body)
    second = client.post(path, headers=headers, json={"mode": "full", **body})
    assert first.status_code == 200
    assert second.status_code == 409
    assert second.get_json()["id"] == first.get_json()["id"]
    # The id names the operation, its target and its time: another mode is the same job.
    assert client.post(path, headers=headers, json={**body, "mode": "freeze"}).status_code == 409
    later = client.post(path, headers=headers, json={**body, "datetime": in_seconds(7200)})
    assert later.status_code == 200 and later.get_json()["id"] != first.get_json()["id"]


def test_lists_are_filtered_by_what_their_path_names(client, headers, db):
    when = in_seconds(3600)
    client.post(f"/maintenance/{db}/reindex", headers=headers, json={"datetime": when})
    client.post(
        f"/maintenance/{db}/schema/public/index/t_pkey/reindex",
        headers=headers,
        json={"datetime": when},
    )
    everywhere = client.get("/maintenance/reindex/scheduled", headers=headers).get_json()
    assert len([row for row in everywhere if row["dbname"] == db]) == 2
    assert client.get("/maintenance/nodb/reindex/scheduled", headers=headers).get_json() == []
    schema = client.get(
        f"/maintenance/{db}/schema/public/reindex/scheduled", headers=headers
    ).get_json()
    assert [(row["index"], row["table"], row["mode"]) for row in schema] == [("t_pkey", None, None)]
    assert client.get(f"/maintenance/{db}/vacuum/scheduled", headers=headers).get_json() == []


def test_a_job_behind_a_long_transaction_fails_on_lock_timeout(
    app, client, headers, db, pg_connections, workers
):
    holder = pg_connections(db, autocommit=False)
    with holder.cursor() as cur:
        cur.execute("SELECT count(*) FROM t")  # ACCESS SHARE until the transaction ends
    path = f"/maintenance/{db}/schema/public/table/t/vacuum"
    ident = client.post(path, headers=headers, json={"mode": "full"}).get_json()["id"]
    workers.start(SENTINEL_MAINTENANCE_LOCK_TIMEOUT="300")
    job = wait_for(lambda: ended(app, ident), timeout=30)
    assert job.status == "failed"
    assert "lock_timeout (300 ms)" in job.error
    holder.rollback()


def test_a_worker_killed_mid_job_leaves_it_failed(
    app, client, headers, db, pg_connections, pg_cluster, workers
):
    holder = pg_connections(db, autocommit=False)
    with holder.cursor() as cur:
        cur.execute("SELECT count(*) FROM t")
    path = f"/maintenance/{db}/schema/public/table/t/vacuum"
    ident = client.post(path, headers=headers, json={"mode": "full"}).get_json()["id"]
    worker = workers.start(SENTINEL_MAINTENANCE_LOCK_TIMEOUT="60000")
    wait_for(lambda: status_of(app, ident).backend_pid, timeout=30, what="the job to start")
    workers.kill(worker)
    with app.app_context():
        _, failed = operations.reconcile(connect_redis(app.config["SENTINEL"]["redis_url"]))
    assert failed == [ident]
    job = status_of(app, ident)
    assert job.status == "failed" and "is dead" in job.error
    holder.rollback()
    pg_cluster.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
        (operations.APPLICATION_NAME,),
    )


def test_jobs_scheduled_before_redis_lost_its_data_still_run(
    app, client, headers, db, redis_server, workers
):
    worker = workers.start()
    path = f"/maintenance/{db}/schema/public/table/t/analyze"
    ident = client.post(path, headers=headers, json={"datetime": in_seconds(4)}).get_json()["id"]
    redis_server.stop()
    # Listed from Sentinel's state while Redis is down.
    listed = client.get(f"{path}/scheduled", headers=headers).get_json()
    assert [row["id"] for row in listed] == [ident]
    redis_server.start()  # on the same port, empty
    assert worker.poll() is None
    with app.app_context():
        resubmitted, _ = operations.reconcile(connect_redis(redis_server.url))
    assert resubmitted == [ident]
    job = wait_for(lambda: ended(app, ident), timeout=40, what="the job to run")
    assert job.status == "done", job.error


def test_the_progress_of_a_running_job_grows(app, client, headers, db, pg_cluster, workers):
    pages = slow_to_vacuum(pg_cluster, db, "slow", pages=500)
    path = f"/maintenance/{db}/schema/public/table/slow/vacuum"
    ident = client.post(path, headers=headers, json={}).get_json()["id"]

    def scanned_beyond(blocks):
        answer = client.get(f"/maintenance/job/{ident}", headers=headers).get_json()
        done = (answer["progress"] or {}).get("done") or 0
        return answer if answer["status"] in ("done", "failed") or done > blocks else None

    workers.start()
    first = wait_for(lambda: scanned_beyond(0), timeout=30, what="blocks scanned")
    assert first["status"] == "doing" and first["started_at"], first
    progress = first["progress"]
    assert (progress["command"], progress["phase"], progress["unit"]) == (
        "vacuum",
        "scanning heap",
        "blocks",
    )
    assert 0 < progress["done"] < progress["total"] == pages
    second = wait_for(lambda: scanned_beyond(progress["done"]), timeout=10, what="more blocks")
    assert second["status"] == "doing", second
    assert progress["done"] < second["progress"]["done"] <= second["progress"]["total"] == pages
    job = wait_for(lambda: ended(app, ident), timeout=30)
    assert job.status == "done", job.error
    after = client.get(f"/maintenance/job/{ident}", headers=headers).get_json()
    assert after["progress"] is None


def test_a_job_rq_ended_before_it_started_fails_with_the_reason(app, client, headers, db):
    base = f"/maintenance/{db}/schema/public/table"
    canceled = client.post(f"{base}/t/analyze", headers=headers, json={}).get_json()["id"]
    failed = client.post(f"{base}/My Table/analyze", headers=headers, json={}).get_json()["id"]
    # No worker runs: both wait on RQ's queue, where RQ ends them as its own
    # tools do (cancel_job) and as its worker does a job it could not load.
    connection = connect_redis(app.config["SENTINEL"]["redis_url"])
    cancel_job(operations.rq_job_id(canceled), connection, serializer=jobs.PlainValues)
    queue = Queue(jobs.QUEUE, connection=connection, serializer=jobs.PlainValues)
    rq_job = Job.fetch(
        operations.rq_job_id(failed), connection=connection, serializer=jobs.PlainValues
    )
    queue.remove(rq_job)
    rq_job.set_status(JobStatus.FAILED)
    FailedJobRegistry(queue=queue).add(rq_job, exc_string="ForeignJob: could not load it")

    with app.app_context():
        resubmitted, gone = operations.reconcile(connection)
    assert resubmitted == [] and sorted(gone) == sorted([canceled, failed])
    listed = client.get(f"/maintenance/{db}/analyze/scheduled", headers=headers).get_json()
    assert {row["id"]: row["status"] for row in listed} == {canceled: "failed", failed: "failed"}
    messages = [row["message"] for row in client.get("/notifications", headers=headers).json]
    for ident, ending in ((canceled, "canceled"), (failed, "failed")):
        detail = client.get(f"/maintenance/job/{ident}", headers=headers).get_json()
        reason = f"the job could not start (its job ended {ending} in RQ)"
        assert (detail["status"], detail["error"], detail["started_at"]) == ("failed", reason, None)
        assert any(message.endswith(f"failed: {reason} ({ident})") for message in messages)
