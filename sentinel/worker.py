"""The RQ worker process, and the cron scheduler that feeds it periodic jobs."""

import logging
import multiprocessing

from rq import Worker
from rq.cron import CronScheduler

from . import jobs, state
from .extensions import connect_redis

logger = logging.getLogger(__name__)


class SentinelWorker(Worker):
    """An RQ worker that never lets a job inherit its state-database connections."""

    def fork_work_horse(self, job, queue):
        state.database.close_all()
        super().fork_work_horse(job, queue)


def run_cron(settings):
    scheduler = CronScheduler(connection=connect_redis(settings["redis_url"]))
    jobs.register_periodic(scheduler, settings)
    scheduler.start()


def run(app, with_cron=True, burst=False):
    """Work Sentinel's queue until stopped; with_cron also runs the scheduler."""
    settings = app.config["SENTINEL"]
    cron = None
    if with_cron and not burst:
        cron = multiprocessing.get_context("fork").Process(
            target=run_cron, args=(settings,), name="sentinel-cron", daemon=True
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
