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

    return [
        Periodic(tasks.housekeeping, interval=600, timeout=120),
        Periodic(
            tasks.collect_dashboard,
            interval=settings["dashboard_interval"],
            timeout=max(settings["dashboard_interval"] * 5, 10),
        ),
        Periodic(
            tasks.collect_monitoring,
            interval=settings["monitoring_interval"],
            timeout=settings["monitoring_interval"],
        ),
    ]


def register_periodic(scheduler, settings):
    """Register the periodic jobs on an rq CronScheduler.

    A run still queued after one interval (the job's ttl) is dropped, so a
    slow worker skips slots instead of piling them up; a failed run is kept
    for ten intervals only, so an outage does not fill Redis with failures.
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
            failure_ttl=max(job.interval * 10, 300),
            name=job.name,
        )
