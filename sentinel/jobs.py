"""RQ plumbing: one enqueue helper, the periodic jobs as data, and what makes a
job in Redis safe to run.

Job functions take ids and plain values, never ORM objects or connections, and
record their outcome in Sentinel's state. The periodic ones are declared by
the plugins (sentinel.plugins.Periodic) besides the core's housekeeping, and
so are the ones enqueued on demand (Plugin.tasks).

Anyone who can write to Redis can put a job on Sentinel's queue, so the worker
trusts nothing a job carries: its data is read back with no class or function
allowed in (PlainValues), and it runs only if it names one of Sentinel's own
tasks (SentinelJob). Callbacks named in a job are never imported.
"""

import functools
import io
import logging
import pickle

from rq import Queue
from rq.job import Job

from .plugins import Periodic
from .plugins import load as load_plugins

QUEUE = "sentinel"
DEFAULT_TIMEOUT = 300
FAILURE_TTL = 7 * 86400
MIN_PERIODIC_TIMEOUT = 10  # s: a run of a job every 2 s may take longer than 2 s

logger = logging.getLogger(__name__)


class ForeignJob(Exception):
    """A job on Sentinel's queue that names none of Sentinel's tasks."""


class _NoGlobals(pickle.Unpickler):
    def find_class(self, module, name):
        # Every way a pickle runs code goes through a global it names.
        raise pickle.UnpicklingError(f"{module}.{name} is not a plain value")


class PlainValues:
    """RQ's own pickle format (so the scheduler's jobs read back as they are),
    loaded with no global allowed: strings, numbers, lists, tuples, dicts and
    None only, which is all a Sentinel job passes."""

    dumps = functools.partial(pickle.dumps, protocol=pickle.HIGHEST_PROTOCOL)

    @staticmethod
    def loads(data):
        return _NoGlobals(io.BytesIO(data)).load()


def task_name(func):
    return f"{func.__module__}.{func.__qualname__}"


@functools.cache
def allowed_tasks():
    """The names of every function Sentinel's worker may run."""
    every = load_plugins()
    funcs = [job.func for job in periodic_jobs(every)]
    funcs += core_tasks()
    funcs += [func for plugin in every for func in plugin.tasks]
    return frozenset(task_name(func) for func in funcs)


class SentinelJob(Job):
    """A job that runs only if it names one of Sentinel's tasks."""

    # Sentinel sets no callbacks: a name stored with a job is never imported.
    success_callback = failure_callback = stopped_callback = None

    @property
    def func(self):
        if self.func_name not in allowed_tasks():
            logger.warning("event=job_refused job=%s func=%s", self.id, self.func_name)
            raise ForeignJob(f"{self.func_name} is not one of Sentinel's tasks")
        return super().func


def enqueue(
    connection,
    func,
    *args,
    job_id=None,
    timeout=DEFAULT_TIMEOUT,
    ttl=None,
    unique=False,
    at=None,
    queue=QUEUE,
    keep_result=True,
):
    """Enqueue func(*args) on Sentinel's queue with the options every job needs.

    `ttl` bounds how long the job may wait for a worker (pass it when a user is
    waiting, or when a late run is worthless); `unique` refuses a second job
    with the same id; `at` (an aware datetime) holds it back until then, for
    the scheduler the worker runs beside its work loop; `queue` is the shared
    queue unless a job is meant for one worker's own (the pool's collection);
    without `keep_result` a job that succeeded is deleted at once (RQ's
    result_ttl=0), which saves Redis writes on jobs run by the thousand.
    """
    if task_name(func) not in allowed_tasks():
        raise ValueError(f"{task_name(func)} is not declared in a plugin's tasks")
    queue = Queue(queue, connection=connection, serializer=PlainValues)
    options = {
        "args": args,
        "job_id": job_id,
        "job_timeout": timeout,
        "ttl": ttl,
        "failure_ttl": FAILURE_TTL,
        "unique": unique,
    }
    if not keep_result:
        options["result_ttl"] = 0
    if at is not None:
        return queue.enqueue_at(at, func, **options)
    return queue.enqueue(func, **options)


def periodic_jobs(plugins):
    """Every periodic job, as data: the core's and each plugin's."""
    from .auth.tasks import housekeeping
    from .pool import collect

    core = [
        Periodic(housekeeping, interval=600, timeout=120),
        Periodic(collect.dispatch, interval="pool_dispatch_interval", timeout=60),
        Periodic(collect.purge, interval=3600, timeout=600),
    ]
    return core + [job for plugin in plugins for job in plugin.periodic]


def core_tasks():
    """The core's functions enqueued on demand (the pool's collection runs)."""
    from .pool import collect

    return [collect.run, collect.run_batch, collect.discover]


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
