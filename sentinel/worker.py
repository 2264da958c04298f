"""The RQ worker process, the cron scheduler that feeds it periodic jobs, and
RQ's scheduler that moves jobs asked for a later time onto the queue.

Any number of workers may run against one Redis; the cron scheduler runs in
only one of them at a time, the one holding a lock in Redis. If that worker
dies, its lock expires and another worker's scheduler takes over.

Each worker also has a queue of its own, worked before the shared one: the
pool's collection sends a source's runs there while this worker holds its
open connection (sentinel.pool.connections).

Both outlive a Redis outage: the worker waits for Redis to come back (saying
so once, and once when it is back) and carries on, and the scheduler
competes for the lock again, so periodic collection restarts by itself.
"""

import contextlib
import logging
import multiprocessing
import os
import signal
import threading
import time

import redis
from rq import SimpleWorker
from rq.cron import CronScheduler
from rq.exceptions import StopRequested
from rq.scheduler import RQScheduler

from . import jobs, logs
from .extensions import connect_redis
from .pool import connections

logger = logging.getLogger(__name__)

CRON_LOCK = "sentinel:cron:leader"
LOCK_TTL = 30  # seconds a dead leader keeps the lock
RENEW_EVERY = 10
REDIS_RETRY = 2  # seconds between two looks at a Redis that is down
SCHEDULER_INTERVAL = 1  # seconds between two looks for jobs whose time has come


class RedisOutage:
    """Says once that Redis went away and once that it is back, however many
    times the code waiting for it fails in between."""

    def __init__(self, where):
        self.where = where
        self.down = False
        # RQ's command listener thread can find Redis gone at the same time
        # as the work loop.
        self.lock = threading.Lock()

    def lost(self, exc):
        with self.lock:
            if not self.down:
                logger.warning("event=redis_unavailable process=%s error=%s", self.where, exc)
                self.down = True

    def back(self):
        with self.lock:
            if self.down:
                logger.info("event=redis_back process=%s", self.where)
                self.down = False


class RetryChatter(logging.Filter):
    """Drops RQ's own lines about Redis being down (one per retry, and a
    traceback when Redis went away in the middle of a job): the outage is
    said once by `outage` instead."""

    def __init__(self, outage):
        super().__init__()
        self.outage = outage

    def filter(self, record):
        if "could not connect to Redis instance" in str(record.msg):
            self.outage.lost(record.args[1] if len(record.args) > 1 else "")
            return False
        if record.exc_info and isinstance(record.exc_info[1], redis.RedisError):
            self.outage.lost(record.exc_info[1])
            return False
        return True


class SentinelWorker(SimpleWorker):
    """Runs jobs in the worker process itself, not in a fork per job.

    Collection jobs come every few seconds and are short: forking for each
    would open a new connection to the watched instance every time, where
    running in place reuses the pool's (and the state database's). Job
    timeouts still apply (SIGALRM); a worker that dies is restarted by systemd
    and its job is marked failed by RQ.
    """

    # RQ waits up to a minute between two tries to reach Redis; collection
    # should restart within seconds of Redis coming back.
    max_connection_wait_time = 5.0

    def __init__(self, *args, outage, **kwargs):
        super().__init__(*args, **kwargs)
        self.outage = outage
        self.stopping = False

    def request_stop(self, signum, frame):
        self.stopping = True
        super().request_stop(signum, frame)

    def heartbeat(self, *args, **kwargs):
        # Called once Redis answered again after a wait.
        super().heartbeat(*args, **kwargs)
        self.outage.back()


def _hold_leadership(connection, token, lost, finished, worker_pid):
    """Renew the lock until it is lost or the worker is gone, then stop the
    scheduler of this process (CronScheduler stops on SIGTERM); or until the
    scheduler has `finished` by itself."""
    renew = connection.register_script(
        "if redis.call('get', KEYS[1]) == ARGV[1] then "
        "return redis.call('expire', KEYS[1], ARGV[2]) else return 0 end"
    )
    while not finished.wait(RENEW_EVERY):
        if os.getppid() != worker_pid:
            logger.warning("event=cron_worker_gone")
            os.kill(os.getpid(), signal.SIGTERM)
            return
        try:
            held = renew(keys=[CRON_LOCK], args=[token, LOCK_TTL])
        except redis.RedisError as exc:
            logger.info("event=cron_lock_renewal_failed error=%s", exc)
            held = 0
        if not held:
            logger.info("event=cron_leadership_lost")
            lost.set()
            os.kill(os.getpid(), signal.SIGTERM)
            return


def run_cron(settings, plugins, token, worker_pid):
    """Wait to be the leader, then run the cron scheduler while leading."""
    connection = connect_redis(settings["redis_url"])
    outage = RedisOutage("cron")
    standing_by = False
    while os.getppid() == worker_pid:
        try:
            leading = connection.set(CRON_LOCK, token, nx=True, ex=LOCK_TTL)
            # Still ours from before an outage: lead again without waiting for it to expire.
            leading = leading or connection.get(CRON_LOCK) == token.encode()
        except redis.RedisError as exc:
            outage.lost(exc)
            leading = False
        else:
            outage.back()
            if not leading and not standing_by:
                logger.info("event=cron_standby token=%s", token)
                standing_by = True
        if not leading:
            time.sleep(RENEW_EVERY / 2)
            continue
        standing_by = False
        logger.info("event=cron_leader token=%s", token)
        lost, finished = threading.Event(), threading.Event()
        threading.Thread(
            target=_hold_leadership,
            args=(connection, token, lost, finished, worker_pid),
            daemon=True,
        ).start()
        try:
            scheduler = CronScheduler(connection=connection)
            jobs.register_periodic(scheduler, settings, plugins)
            scheduler.start()
        except redis.RedisError as exc:
            outage.lost(exc)
        finally:
            finished.set()
        if not lost.is_set() and not outage.down:
            return  # asked to stop from outside: give the lock up at once
        # Lost the lock or Redis (an outage, a long pause): compete for it again.


def release_cron_lock(connection, token):
    try:
        if connection.get(CRON_LOCK) == token.encode():
            connection.delete(CRON_LOCK)
    except redis.RedisError:
        pass


def run(app, with_cron=True, burst=False):
    """Work Sentinel's queue until stopped; with_cron also runs the scheduler.

    While Redis is down the worker waits for it, then starts working again;
    a stop asked meanwhile (SIGTERM, Ctrl-C) ends it at once, cleanly."""
    settings = app.config["SENTINEL"]
    outage = RedisOutage("worker")
    logging.getLogger("rq.worker").addFilter(RetryChatter(outage))
    children = []
    pool_stop = None
    try:
        if not burst:
            # Forked before RQ starts its threads, each with Ctrl-C held back
            # over the fork (it reaches the whole process group), so that it
            # ignores it from its first instruction on.
            fork = multiprocessing.get_context("fork")
            targets = [(_scheduler_process, (settings, os.getpid()), "sentinel-scheduler")]
            if with_cron:
                plugins = app.extensions["sentinel.plugins"]
                targets.append((_cron_process, (settings, plugins, os.getpid()), "sentinel-cron"))
            for target, args, name in targets:
                child = fork.Process(target=target, args=args, name=name, daemon=True)
                blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
                try:
                    child.start()
                finally:
                    signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
                children.append(child)
            # After the forks: a child never inherits the thread this starts.
            pool_stop = connections.start(app.extensions["sentinel.redis"])
        cron = children[1] if len(children) > 1 else None
        logger.info("event=worker_started pid=%s scheduler=%s", os.getpid(), cron is not None)
        # In the app's context already (the command's): a second one pushed
        # here could be left behind by a Ctrl-C landing mid-push.
        _work(app.extensions["sentinel.redis"], outage, settings, burst)
    except KeyboardInterrupt:
        pass  # Ctrl-C before RQ's loop had its own handler in place
    finally:
        if pool_stop is not None:
            pool_stop()  # closes the sources' connections, says this worker is gone
        for child in children:
            if child.is_alive():
                child.terminate()
        for child in children:
            child.join(10)
        logger.info("event=worker_stopped pid=%s", os.getpid())


def _work(connection, outage, settings, burst):
    """RQ's work loop, started again each time Redis goes away under it.

    RQ's own signal handlers stay in place: a stop outside RQ's loop raises
    StopRequested here, as it does in RQ's loop."""
    worker = None
    queues = [jobs.QUEUE]
    if connections.identity is not None:
        queues.insert(0, connections.queue_name(connections.identity))
    try:
        while True:
            worker = SentinelWorker(
                queues,
                connection=connection,
                outage=outage,
                job_class=jobs.SentinelJob,
                serializer=jobs.PlainValues,
            )
            try:
                worker.work(burst=burst, logging_level=logs.quiet_level(settings["log_level"]))
                return
            except redis.RedisError as exc:
                if worker.stopping:
                    return
                outage.lost(exc)
            time.sleep(REDIS_RETRY)
    except (StopRequested, KeyboardInterrupt):
        # Asked to stop outside RQ's loop: while waiting to try Redis again,
        # or while RQ registers the worker before its loop.
        return
    except redis.RedisError:
        # The same, while Redis is down: RQ's stop handler fails to note the
        # stop in Redis, and raises that instead.
        if worker is None or not worker.stopping:
            raise


def _cron_process(settings, plugins, worker_pid):
    # Ctrl-C reaches the whole process group: the worker stops this process
    # (SIGTERM) on its way out, after the job in hand.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})  # blocked over the fork
    token = f"{os.uname().nodename}:{os.getpid()}"
    try:
        run_cron(settings, plugins, token, worker_pid)
    except (StopRequested, KeyboardInterrupt):
        pass  # stopped by the worker (SIGTERM) while not scheduling
    finally:
        # Stopping already: a second SIGTERM must not cut the lock's release.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        release_cron_lock(connect_redis(settings["redis_url"]), token)


def run_scheduler(settings, worker_pid, stop):
    """RQ's scheduler, for jobs enqueued for a later time (`enqueue_at`): one at
    a time per Redis under RQ's lock, taken over within a minute when its
    holder dies. Outlives a Redis outage; ends when stop() is true or the
    worker is gone."""
    connection = connect_redis(settings["redis_url"])
    outage = RedisOutage("scheduler")

    def new_scheduler():
        return RQScheduler(
            [jobs.QUEUE],
            connection=connection,
            interval=SCHEDULER_INTERVAL,
            serializer=jobs.PlainValues,
            logging_level=logs.quiet_level(settings["log_level"]),
        )

    scheduler = new_scheduler()
    try:
        while not stop() and os.getppid() == worker_pid:
            try:
                if scheduler.acquired_locks:
                    scheduler.heartbeat()  # renews the lock, or finds it taken
                if not scheduler.acquired_locks:
                    scheduler.acquire_locks()
                if scheduler.acquired_locks:
                    scheduler.enqueue_scheduled_jobs()
            except redis.RedisError as exc:
                outage.lost(exc)
                # What it held is unknown now: start afresh, to take the lock again.
                scheduler = new_scheduler()
            else:
                outage.back()
            time.sleep(SCHEDULER_INTERVAL)
    finally:
        with contextlib.suppress(redis.RedisError):
            scheduler.release_locks()


def _scheduler_process(settings, worker_pid):
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})  # blocked over the fork
    stopping = []
    signal.signal(signal.SIGTERM, lambda signum, frame: stopping.append(signum))
    run_scheduler(settings, worker_pid, lambda: bool(stopping))
