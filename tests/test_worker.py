"""The RQ worker and its periodic jobs, run for real against Redis."""

import datetime
import signal
import subprocess
import sys

import psutil
from polling import wait_for
from rq.cron import CronScheduler

from sentinel import jobs, state
from sentinel.auth import tasks
from sentinel.extensions import connect_redis
from sentinel.state import LoginFailure, Session, utcnow
from sentinel.worker import CRON_LOCK


def expire_all_sessions(app):
    with app.app_context():
        Session.update(expires_at=utcnow() - datetime.timedelta(seconds=1)).execute()


def test_housekeeping_runs_in_the_worker(app, auth, sentinel, settings):
    expired = auth.login()
    expire_all_sessions(app)
    live = auth.login(create=False)
    with app.app_context():
        LoginFailure.create(
            scope="username", key="alice", at=utcnow() - datetime.timedelta(hours=1)
        )
    jobs.enqueue(connect_redis(settings["redis_url"]), tasks.housekeeping)

    result = sentinel("worker", "--burst", "--no-cron")
    assert result.returncode == 0, result.stderr

    with app.app_context():
        kept = [row.token_hash for row in Session.select()]
        assert LoginFailure.select().count() == 0
    from sentinel.auth.sessions import digest

    assert kept == [digest(live)]
    assert digest(expired) not in kept


def test_periodic_jobs_are_registered_as_declared(app):
    settings = app.config["SENTINEL"]
    scheduler = CronScheduler(connection=connect_redis(settings["redis_url"]))
    plugins = app.extensions["sentinel.plugins"]
    jobs.register_periodic(scheduler, settings, plugins)
    registered = {job.name: job for job in scheduler.get_jobs()}
    declared = {job.name: job for job in jobs.periodic_jobs(plugins)}
    assert (
        set(registered)
        == set(declared)
        == {
            "sentinel.auth.tasks.housekeeping",
            "sentinel.plugins.dashboard.tasks.collect",
            "sentinel.plugins.maintenance.tasks.reconcile",
            "sentinel.plugins.monitoring.tasks.collect",
            "sentinel.plugins.pgconf.tasks.watch",
            "sentinel.plugins.statements.tasks.snapshot",
            "sentinel.pool.collect.dispatch",
            "sentinel.pool.collect.purge",
        }
    )
    for name, job in registered.items():
        interval = declared[name].seconds(settings)
        assert job.interval == interval
        assert job.queue_name == jobs.QUEUE
        # A slot nobody picked up within one interval is dropped, not piled up.
        assert job.job_options["ttl"] == interval


def test_the_worker_schedules_housekeeping_and_stops_cleanly(app, auth, sentinel_env):
    auth.login()
    expire_all_sessions(app)
    worker = subprocess.Popen(
        [sys.executable, "-m", "sentinel", "worker"],
        env=sentinel_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )

    def sessions_left():
        with app.app_context():
            count = Session.select().count()
        state.database.close()
        return count

    try:
        wait_for(lambda: sessions_left() == 0, 20, step=0.2, what="housekeeping to run")
    finally:
        worker.send_signal(signal.SIGTERM)
        _, errors = worker.communicate(timeout=30)
    assert worker.returncode == 0, errors
    assert "Traceback" not in errors


def start_worker(env, log_path):
    with open(log_path, "wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "sentinel", "worker"], env=env, stdout=log, stderr=log
        )


def test_one_cron_scheduler_among_several_workers_and_a_successor(sentinel_env, settings, tmp_path):
    connection = connect_redis(settings["redis_url"])
    logs = [tmp_path / f"worker-{number}.log" for number in range(2)]
    workers = [start_worker(sentinel_env, log) for log in logs]

    def said(event):
        return sum(log.read_text().count(f"event={event} ") for log in logs)

    try:
        leader = wait_for(lambda: connection.get(CRON_LOCK), 20).decode()
        # Both competed for the lock: one leads, the other stands by.
        wait_for(lambda: said("cron_leader") == 1 and said("cron_standby") == 1, 20)
        wait_for(lambda: len(CronScheduler.all(connection)) == 1, 10)
        assert said("cron_leader") == 1
        cron_pid = int(leader.rsplit(":", 1)[1])
        worker_pid = psutil.Process(cron_pid).ppid()
        leading = next(w for w in workers if w.pid == worker_pid)

        leading.kill()  # no clean shutdown: the successor must take over alone
        leading.wait(10)
        successor = wait_for(
            lambda: (value := connection.get(CRON_LOCK)) and value.decode() != leader and value,
            45,
        ).decode()
        assert psutil.Process(int(successor.rsplit(":", 1)[1])).ppid() in {
            w.pid for w in workers if w is not leading
        }
        wait_for(lambda: not psutil.pid_exists(cron_pid), 20)  # the orphan stopped
    finally:
        for process in workers:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.wait(30)
