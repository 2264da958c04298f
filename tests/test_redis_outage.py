"""A real Redis stopped and started under a running service and worker: they
keep running, answer what needs no Redis, say once that it went and once
that it is back, and collect again by themselves."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import urllib.request

import pytest
from polling import wait_for

from sentinel.dev import sandbox


@pytest.fixture
def outage(tmp_path, pg_cluster):
    """A Redis of the test's own (stopped and started on the same port), and a
    service and a worker using it."""
    redis_server = sandbox.RedisServer().start()
    state_dir = tmp_path / "state"
    env = {
        **os.environ,
        "SENTINEL_STATE_DIR": str(state_dir),
        "SENTINEL_PG_DSN": pg_cluster.dsn(),
        "SENTINEL_REDIS_URL": redis_server.url,
        "SENTINEL_HOSTNAME": "sentinel.test",
        "SENTINEL_DASHBOARD_INTERVAL": "1",
    }
    service = sandbox.Service(env, log=tmp_path / "web.log").start()
    worker_log = open(tmp_path / "worker.log", "wb")  # noqa: SIM115 - closed below
    worker = subprocess.Popen(
        [sys.executable, "-m", "sentinel", "worker"],
        env=env,
        stdout=worker_log,
        stderr=subprocess.STDOUT,
    )
    subprocess.run(
        [sys.executable, "-m", "sentinel", "users", "create", "alice", "--password-stdin"],
        input="alice-password\n",
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    yield redis_server, service, worker, state_dir, tmp_path
    if worker.poll() is None:
        worker.terminate()
        worker.wait(30)
    worker_log.close()
    service.stop()
    redis_server.stop()


def call(service, method, path, body=None, headers=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        service.url + path, data=data, method=method, headers=headers or {}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def samples_stored(state_dir):
    with sqlite3.connect(state_dir / "sentinel.db") as conn:
        return conn.execute("SELECT count(*) FROM dashboard_sample").fetchone()[0]


def test_a_redis_outage_loses_nothing_and_needs_no_restart(outage):
    redis_server, service, worker, state_dir, logs = outage
    wait_for(lambda: samples_stored(state_dir) >= 2, 30, what="the worker to collect")
    assert call(service, "GET", "/status")[1]["redis"] == "available"

    redis_server.stop()
    status, body = call(service, "GET", "/status")
    assert (status, body["redis"]) == (200, "unavailable")
    # What needs no Redis still answers: sign-in, live figures, backends.
    status, body = call(
        service, "POST", "/login", {"username": "alice", "password": "alice-password"}
    )
    assert status == 200, body
    headers = {"X-Session": body["session"]}
    for path in ("/dashboard/live", "/activity", "/monitoring/probe/cpu"):
        assert call(service, "GET", path, headers=headers)[0] == 200, path
    during = samples_stored(state_dir)
    wait_for(
        lambda: "event=redis_unavailable process=worker" in (logs / "worker.log").read_text(),
        20,
        what="the worker to say Redis is gone",
    )
    assert worker.poll() is None

    redis_server.start()  # on the same port, empty: its data was not kept
    wait_for(lambda: samples_stored(state_dir) > during + 2, 60, what="collection to restart")
    assert call(service, "GET", "/status")[1]["redis"] == "available"
    worker_text = (logs / "worker.log").read_text()
    # Said once when it went and once when it came back, however long it took.
    assert worker_text.count("event=redis_unavailable process=worker ") == 1, worker_text
    assert worker_text.count("event=redis_back process=worker") == 1, worker_text
    # The scheduler says so too when it noticed (it looks every second or so).
    lost = worker_text.count("event=redis_unavailable process=cron ")
    assert lost <= 1 and worker_text.count("event=redis_back process=cron") == lost
    web_text = (logs / "web.log").read_text()
    assert web_text.count("event=redis_unavailable process=web") >= 1
    assert "Traceback" not in worker_text + web_text


def test_the_worker_stops_cleanly_during_an_outage(outage):
    redis_server, service, worker, state_dir, logs = outage
    wait_for(lambda: samples_stored(state_dir) >= 1, 30, what="the worker to collect")
    redis_server.stop()
    wait_for(
        lambda: "event=redis_unavailable process=worker" in (logs / "worker.log").read_text(),
        20,
        what="the worker to say Redis is gone",
    )
    worker.send_signal(signal.SIGTERM)
    code = worker.wait(30)
    text = (logs / "worker.log").read_text()
    assert code == 0, text
    assert "event=worker_stopped" in text
    assert "Traceback" not in text, text
