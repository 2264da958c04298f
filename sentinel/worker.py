"""The RQ worker process, and the cron scheduler that feeds it periodic jobs.

Any number of workers may run against one Redis; the cron scheduler runs in
only one of them at a time, the one holding a lock in Redis. If that worker
dies, its lock expires and another worker's scheduler takes over.
"""

import logging
import multiprocessing
import os
import signal
import threading
import time

import redis
from rq import SimpleWorker
from rq.cron import CronScheduler

from . import jobs
from .extensions import connect_redis

logger = logging.getLogger(__name__)

CRON_LOCK = "sentinel:cron:leader"
LOCK_TTL = 30  # seconds a dead leader keeps the lock
RENEW_EVERY = 10


class SentinelWorker(SimpleWorker):
    """Runs jobs in the worker process itself, not in a fork per job.

    Collection jobs come every few seconds and are short: forking for each
    would open a new connection to the watched instance every time, where
    running in place reuses the pool's (and the state database's). Job
    timeouts still apply (SIGALRM); a worker that dies is restarted by systemd
    and its job is marked failed by RQ.
    """


def _hold_leadership(connection, token, lost, worker_pid):
    """Renew the lock until it is lost or the worker is gone, then stop the
    scheduler of this process (CronScheduler stops on SIGTERM)."""
    renew = connection.register_script(
        "if redis.call('get', KEYS[1]) == ARGV[1] then "
        "return redis.call('expire', KEYS[1], ARGV[2]) else return 0 end"
    )
    while True:
        time.sleep(RENEW_EVERY)
        if os.getppid() != worker_pid:
            logger.warning("event=cron_worker_gone")
            os.kill(os.getpid(), signal.SIGTERM)
            return
        try:
            held = renew(keys=[CRON_LOCK], args=[token, LOCK_TTL])
        except redis.RedisError as exc:
            logger.warning("event=cron_lock_renewal_failed error=%s", exc)
            held = 0
        if not held:
            logger.warning("event=cron_leadership_lost")
            lost.set()
            os.kill(os.getpid(), signal.SIGTERM)
            return


def run_cron(settings, plugins, token, worker_pid):
    """Wait to be the leader, then run the cron scheduler while leading."""
    connection = connect_redis(settings["redis_url"])
    standing_by = False
    while os.getppid() == worker_pid:
        try:
            leading = connection.set(CRON_LOCK, token, nx=True, ex=LOCK_TTL)
        except redis.RedisError as exc:
            logger.warning("event=cron_waiting_for_redis error=%s", exc)
            leading = False
        else:
            if not leading and not standing_by:
                logger.info("event=cron_standby token=%s", token)
                standing_by = True
        if not leading:
            time.sleep(RENEW_EVERY / 2)
            continue
        standing_by = False
        logger.info("event=cron_leader token=%s", token)
        lost = threading.Event()
        threading.Thread(
            target=_hold_leadership, args=(connection, token, lost, worker_pid), daemon=True
        ).start()
        scheduler = CronScheduler(connection=connection)
        jobs.register_periodic(scheduler, settings, plugins)
        scheduler.start()
        if not lost.is_set():
            return  # asked to stop from outside: give the lock up at once
        # Lost the lock (Redis outage or a long pause): compete for it again.


def release_cron_lock(connection, token):
    try:
        if connection.get(CRON_LOCK) == token.encode():
            connection.delete(CRON_LOCK)
    except redis.RedisError:
        pass


def run(app, with_cron=True, burst=False):
    """Work Sentinel's queue until stopped; with_cron also runs the scheduler."""
    settings = app.config["SENTINEL"]
    cron = None
    if with_cron and not burst:
        cron = multiprocessing.get_context("fork").Process(
            target=_cron_process,
            args=(settings, app.extensions["sentinel.plugins"], os.getpid()),
            name="sentinel-cron",
            daemon=True,
        )
        cron.start()
    try:
        with app.app_context():
            worker = SentinelWorker([jobs.QUEUE], connection=app.extensions["sentinel.redis"])
            worker.work(burst=burst, with_scheduler=True, logging_level=settings["log_level"])
    finally:
        if cron is not None and cron.is_alive():
            cron.terminate()
            cron.join(10)


def _cron_process(settings, plugins, worker_pid):
    token = f"{os.uname().nodename}:{os.getpid()}"
    try:
        run_cron(settings, plugins, token, worker_pid)
    finally:
        release_cron_lock(connect_redis(settings["redis_url"]), token)
