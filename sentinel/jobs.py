"""RQ plumbing: one enqueue helper, and the periodic jobs as data.

Job functions live in sentinel.tasks; they take ids and plain values, never ORM
objects or connections, and record their outcome in Sentinel's state.
"""

from dataclasses import dataclass, field

from rq import Queue

QUEUE = "sentinel"
DEFAULT_TIMEOUT = 300
FAILURE_TTL = 7 * 86400


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


@dataclass(frozen=True)
class Periodic:
    """A job the cron scheduler enqueues every `interval` seconds."""

    func: object
    interval: int
    timeout: int = 60
    args: tuple = field(default_factory=tuple)

    @property
    def name(self):
        return f"{self.func.__module__}.{self.func.__name__}"


def periodic_jobs(settings):
    """Every periodic job, as data: the cron scheduler registers exactly these."""
    from . import tasks

    return [Periodic(tasks.housekeeping, interval=600, timeout=120)]


def register_periodic(scheduler, settings):
    """Register the periodic jobs on an rq CronScheduler.

    A run that finds its previous one still queued is dropped after one
    interval (the job's ttl), so a slow worker skips slots instead of piling up.
    """
    for job in periodic_jobs(settings):
        scheduler.register(
            job.func,
            queue_name=QUEUE,
            args=job.args,
            interval=job.interval,
            job_timeout=job.timeout,
            ttl=job.interval,
            result_ttl=0,
            failure_ttl=FAILURE_TTL,
            name=job.name,
        )
