"""Whoever can write to Redis can put a job on Sentinel's queue: the worker
runs Sentinel's own tasks only, and reads a job's data with no code in it."""

import os
import pickle

import pytest
from rq import Queue
from rq.registry import FailedJobRegistry

from sentinel import jobs
from sentinel.auth import tasks
from sentinel.extensions import connect_redis


class RunsACommand:
    """What an attacker pickles: unpickling it runs the command."""

    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def booby_trapped(command):
    class Serializer:
        @staticmethod
        def dumps(_job_tuple):
            return pickle.dumps(RunsACommand(command))

        loads = staticmethod(pickle.loads)

    return Serializer


@pytest.fixture
def connection(settings):
    return connect_redis(settings["redis_url"])


def test_the_worker_refuses_a_job_that_names_a_foreign_function(connection, sentinel, tmp_path):
    marker = tmp_path / "owned"
    # What three Redis commands do, through RQ's own client.
    foreign = Queue(jobs.QUEUE, connection=connection).enqueue("os.system", f"touch {marker}")
    ours = jobs.enqueue(connection, tasks.housekeeping)

    result = sentinel("worker", "--burst", "--no-cron")

    assert result.returncode == 0, result.stderr
    assert not marker.exists()
    assert f"event=job_refused job={foreign.id} func=os.system" in result.stderr
    failed = FailedJobRegistry(jobs.QUEUE, connection=connection)
    assert failed.get_job_ids() == [foreign.id]
    # The worker goes on with Sentinel's own jobs.
    assert ours.get_status(refresh=True) == "finished"


def test_the_worker_never_unpickles_code_carried_by_a_job(connection, sentinel, tmp_path):
    marker = tmp_path / "owned"
    queue = Queue(jobs.QUEUE, connection=connection, serializer=booby_trapped(f"touch {marker}"))
    # It even names one of Sentinel's tasks.
    trapped = queue.enqueue(tasks.housekeeping)

    result = sentinel("worker", "--burst", "--no-cron")

    assert result.returncode == 0, result.stderr
    assert not marker.exists()
    failed = FailedJobRegistry(jobs.QUEUE, connection=connection)
    assert failed.get_job_ids() == [trapped.id]


def test_sentinel_cannot_enqueue_a_function_no_plugin_declared(connection):
    with pytest.raises(ValueError, match="system is not declared"):
        jobs.enqueue(connection, os.system, "true")
    assert Queue(jobs.QUEUE, connection=connection).count == 0
