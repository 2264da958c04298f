"""`make run`'s program: sandbox cluster, Redis, worker and gunicorn up with one
command; Ctrl-C stops all it started; a second run reuses the sandbox."""

import http.client
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from sentinel.dev import sandbox

ROOT = Path(__file__).resolve().parent.parent


class DevServer:
    def __init__(self, env):
        self.lines = queue.Queue()
        self.output = []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "sentinel.dev.supervisor"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # its own process group, as a terminal gives it
        )
        self.pump = threading.Thread(target=self._pump, daemon=True)
        self.pump.start()

    def _pump(self):
        for line in self.process.stdout:
            self.lines.put(line)

    def wait_for(self, text, timeout=120):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                if self.process.poll() is not None:
                    break
                continue
            self.output.append(line)
            if text in line:
                return
        raise AssertionError(f"{text!r} never printed:\n{''.join(self.output)}")

    def ctrl_c(self):
        os.killpg(self.process.pid, signal.SIGINT)
        self.process.wait(90)
        self.pump.join(10)
        self.process.stdout.close()
        while not self.lines.empty():
            self.output.append(self.lines.get())

    @property
    def text(self):
        return "".join(self.output)


def post_login(port, password):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    body = json.dumps({"username": "admin", "password": password})
    try:
        connection.request("POST", "/login", body=body)
        answer = connection.getresponse()
        return answer.status, json.loads(answer.read())
    finally:
        connection.close()


def get_profile(port, session):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", "/profile", headers={"X-Session": session})
        return connection.getresponse().status
    finally:
        connection.close()


@pytest.fixture
def state_dir():
    path = Path(tempfile.mkdtemp(prefix="sentinel-run-", dir="/tmp"))
    os.chmod(path, 0o755)
    yield path
    cluster = sandbox.Cluster(path / "sandbox")
    cluster.stop("immediate")
    shutil.rmtree(path, ignore_errors=True)


def test_make_run_brings_everything_up_and_ctrl_c_stops_it(state_dir):
    port, redis_port = sandbox.free_port(), sandbox.free_port()
    env = {
        **os.environ,
        "SENTINEL_STATE_DIR": str(state_dir),
        "SENTINEL_BIND": f"127.0.0.1:{port}",
        "SENTINEL_ADMIN_PASSWORD": "admin-password",
        "SENTINEL_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
    }
    first = DevServer(env)
    first.wait_for("press Ctrl-C to stop")
    assert f"Sentinel is running at http://127.0.0.1:{port}/ui/" in first.text
    assert "creating the sandbox cluster" in first.text
    managed = next(line for line in first.text.splitlines() if "managed instance:" in line)
    # The DSN without its password, and where the password is.
    assert "host=127.0.0.1" in managed
    assert "password=" not in first.text
    assert f"password in {state_dir / 'sandbox' / 'password'}" in managed
    status, body = post_login(port, "admin-password")
    assert status == 200
    cluster = sandbox.Cluster(state_dir / "sandbox")
    assert cluster.is_running()
    assert sandbox.answers(env["SENTINEL_REDIS_URL"])

    first.ctrl_c()
    assert not cluster.is_running(), first.text
    assert not sandbox.answers(env["SENTINEL_REDIS_URL"])
    assert sandbox.port_is_free(port)
    assert "Traceback" not in first.text

    # A second run reuses the sandbox and the state: the session is still good.
    second = DevServer(env)
    second.wait_for("press Ctrl-C to stop")
    assert "creating the sandbox cluster" not in second.text
    assert get_profile(port, body["session"]) == 200
    second.ctrl_c()
    assert not cluster.is_running()
