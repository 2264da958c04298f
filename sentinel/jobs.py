"""RQ plumbing: one enqueue helper, and the periodic jobs as data.

Job functions take ids and plain values, never ORM objects or connections, and
record their outcome in Sentinel's state. The periodic ones are declared by
the plugins (sentinel.plugins.Periodic) besides the core's housekeeping.
"""

from rq import Queue

from .plugins import Periodic

QUEUE = "sentinel"
DEFAULT_TIMEOUT = 300
FAILURE_TTL = 7 * 86400
MIN_PERIODIC_TIMEOUT = 10  # s: a run of a job every 2 s may take longer than 2 s


def enqueue(connection, func, *args, job_id=None, timeout=DEFAULT_TIMEOUT, ttl=None, unique=False):
    """Enqueue func(*args) on Sentinel's queue with the options every job needs.

    `ttl` bounds how long the job may wait for a worker (pass it when a user is
    waiting, or when a late run is worthless); `unique` refuses a second job
    with the same id.
    """
    queue = Queue(QUEUE, connection=connection)
    return queue.enqueue(
        func,
        args=args,
        job_id=job_id,
        job_timeout=timeout,
        ttl=ttl,
        failure_ttl=FAILURE_TTL,
        unique=unique,
    )


def periodic_jobs(plugins):
    """Every periodic job, as data: the core's and each plugin's."""
    from .auth import tasks

    core = [Periodic(tasks.housekeeping, interval=600, timeout=120)]
    return core + [job for plugin in plugins for job in plugin.periodic]


def register_periodic(scheduler, settings, plugins):
    """Register the periodic jobs on an rq CronScheduler.

    A run still queued after one interval (the job's ttl) is dropped, so a
    slow worker skips slots instead of piling them up; a failed run is kept
    for ten intervals only, so an outage does not fill Redis with failures.
    """
    for job in periodic_jobs(plugins):
        interval = job.seconds(settings)
        scheduler.register(
            job.func,
            queue_name=QUEUE,
            interval=interval,
            job_timeout=job.timeout or max(interval, MIN_PERIODIC_TIMEOUT),
            ttl=interval,
            result_ttl=0,
            failure_ttl=max(interval * 10, 300),
            name=job.name,
        )
