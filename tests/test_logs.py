"""Logs a DBA can read: at INFO, starts and stops, the configuration in use,
changes and failed logins; nothing for every collector tick or request; and
JSON lines for log shippers."""

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
def running(tmp_path, pg_cluster, redis_url):
    """start(**env) -> (service, worker, log directory): a service and a worker
    collecting every second (dashboard) and ten seconds (probes)."""
    started = []

    def start(**extra):
        env = {
            **os.environ,
            "SENTINEL_STATE_DIR": str(tmp_path / "state"),
            "SENTINEL_PG_DSN": pg_cluster.dsn(),
            "SENTINEL_REDIS_URL": redis_url,
            "SENTINEL_HOSTNAME": "sentinel.test",
            "SENTINEL_DASHBOARD_INTERVAL": "1",
            "SENTINEL_MONITORING_INTERVAL": "10",
            **extra,
        }
        service = sandbox.Service(env, log=tmp_path / "web.log").start()
        log = open(tmp_path / "worker.log", "wb")  # noqa: SIM115 - closed below
        worker = subprocess.Popen(
            [sys.executable, "-m", "sentinel", "worker"], env=env, stdout=log, stderr=log
        )
        started.append((service, worker, log))
        return service, worker, tmp_path

    yield start
    for service, worker, log in started:
        worker.terminate()
        worker.wait(30)
        log.close()
        service.stop()


def stored(state_dir, table):
    with sqlite3.connect(state_dir / "sentinel.db") as conn:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def lines(path):
    return path.read_text().splitlines()


def post(service, path, body):
    request = urllib.request.Request(
        service.url + path, data=json.dumps(body).encode(), method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status
    except urllib.error.HTTPError as error:
        return error.code


def test_collecting_says_nothing_at_info(running):
    service, worker, logs = running()
    state = logs / "state"
    wait_for(lambda: stored(state, "monitoring_run") >= 1, 30, what="a first probe run")
    before = len(lines(logs / "web.log")) + len(lines(logs / "worker.log"))
    samples, runs = stored(state, "dashboard_sample"), stored(state, "monitoring_run")
    # Ten more dashboard samples and another probe run, with pages polling meanwhile.
    wait_for(
        lambda: (
            stored(state, "dashboard_sample") >= samples + 10
            and stored(state, "monitoring_run") > runs
        ),
        40,
        what="ten dashboard samples and a probe run",
    )
    after = lines(logs / "web.log") + lines(logs / "worker.log")
    assert len(after) == before, "\n".join(after[before - len(after) :])
    started = "\n".join(after)
    assert "event=service_started" in started and "event=worker_started" in started
    assert "redis=" in started and "password" not in started


def test_failed_logins_and_changes_are_logged_without_secrets(running):
    service, worker, logs = running()
    subprocess.run(
        [sys.executable, "-m", "sentinel", "users", "create", "alice", "--password-stdin"],
        input="alice-password\n",
        env=service.env,
        check=True,
        capture_output=True,
        text=True,
    )
    assert post(service, "/login", {"username": "alice", "password": "wrong-guess"}) == 404
    assert post(service, "/login", {"username": "alice", "password": "alice-password"}) == 200
    text = wait_for(
        lambda: "event=login " in (logs / "web.log").read_text() and (logs / "web.log").read_text(),
        what="the login to be logged",
    )
    assert "level=WARNING" in text and "event=login_failed username=alice address=127.0.0.1" in text
    assert "event=login username=alice address=127.0.0.1" in text
    assert "wrong-guess" not in text and "alice-password" not in text


def test_json_lines_for_log_shippers(running):
    service, worker, logs = running(SENTINEL_LOG_FORMAT="json")
    wait_for(lambda: "worker_started" in (logs / "worker.log").read_text(), 20)
    records = [json.loads(line) for line in lines(logs / "web.log") + lines(logs / "worker.log")]
    assert records
    assert all({"time", "level", "logger", "message"} <= set(record) for record in records)
    assert any(record["message"].startswith("event=service_started") for record in records)
    assert any(record["logger"].startswith("gunicorn") for record in records)


def test_a_reload_keeps_sentinels_lines(running):
    service, worker, logs = running()
    before = (logs / "web.log").read_text().count("Booting worker")
    service.process.send_signal(signal.SIGHUP)
    wait_for(
        lambda: (logs / "web.log").read_text().count("Booting worker") >= before + 2,
        what="the reloaded workers",
    )
    assert post(service, "/login", {"username": "nobody", "password": "wrong-guess"}) == 404
    line = wait_for(
        lambda: next(
            (line for line in lines(logs / "web.log") if "event=login_failed" in line), None
        ),
        what="the failed login to be logged after the reload",
    )
    assert line.split(" ", 2)[2].startswith("level=WARNING logger=sentinel.auth")
