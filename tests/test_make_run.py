"""`make run`'s program: sandbox cluster, Redis, worker and gunicorn up with one
command; Ctrl-C stops all it started; a second run reuses the sandbox."""

import http.client
import json
import os
import queue
import shutil
import signal
import ssl
import stat
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
import pytest
from polling import wait_for

from sentinel import tls
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


def as_another_user(*command):
    """Run a command as a local user with no privileges."""
    return subprocess.run(
        ["runuser", "-u", "nobody", "--", *command], capture_output=True, text=True, timeout=10
    )


@pytest.fixture
def state_dir():
    path = Path(tempfile.mkdtemp(prefix="sentinel-run-", dir="/tmp"))
    os.chmod(path, 0o755)
    yield path
    cluster = sandbox.Cluster(path / "sandbox")
    cluster.stop("immediate")
    shutil.rmtree(path, ignore_errors=True)


def test_make_run_brings_everything_up_and_ctrl_c_stops_it(state_dir):
    port = sandbox.free_port()
    env = {
        **os.environ,
        "SENTINEL_STATE_DIR": str(state_dir),
        "SENTINEL_BIND": f"127.0.0.1:{port}",
        "SENTINEL_ADMIN_PASSWORD": "admin-password",
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
    # The banner comes once the service and the worker have said they started.
    lines = first.text.splitlines()
    banner = next(i for i, line in enumerate(lines) if "Sentinel is running at" in line)
    assert any("event=service_started" in line for line in lines[:banner])
    assert any("event=worker_started" in line for line in lines[:banner])
    status, body = post_login(port, "admin-password")
    assert status == 200
    cluster = sandbox.Cluster(state_dir / "sandbox")
    assert cluster.is_running()
    # Its own Redis, on a unix socket in a directory only its owner may enter.
    redis_dir = state_dir / "redis"
    assert stat.S_IMODE(redis_dir.stat().st_mode) == 0o700
    assert sandbox.answers(f"unix://{redis_dir / 'redis.sock'}")
    # Another local user cannot reach it to queue a job.
    tried = as_another_user("redis-cli", "-s", str(redis_dir / "redis.sock"), "LPUSH", "q", "x")
    assert "Permission denied" in tried.stdout + tried.stderr

    first.ctrl_c()
    assert not cluster.is_running(), first.text
    assert not sandbox.answers(f"unix://{redis_dir / 'redis.sock'}")
    assert sandbox.port_is_free(port)
    assert "Traceback" not in first.text, first.text

    # A second run reuses the sandbox and the state: the session is still good.
    second = DevServer(env)
    second.wait_for("press Ctrl-C to stop")
    assert "creating the sandbox cluster" not in second.text
    assert get_profile(port, body["session"]) == 200
    second.ctrl_c()
    assert not cluster.is_running()


def test_make_run_never_borrows_a_redis_it_was_not_given(state_dir):
    other = sandbox.RedisServer(port=6379).start() if sandbox.port_is_free(6379) else None
    try:
        env = {
            **os.environ,
            "SENTINEL_STATE_DIR": str(state_dir),
            "SENTINEL_BIND": f"127.0.0.1:{sandbox.free_port()}",
        }
        run = DevServer(env)
        run.wait_for("press Ctrl-C to stop")
        assert f"starting redis-server on {state_dir / 'redis' / 'redis.sock'}" in run.text
        run.ctrl_c()
    finally:
        if other is not None:
            other.stop()


def test_make_run_starts_a_redis_with_a_password_at_a_given_silent_address(state_dir):
    redis_port = sandbox.free_port()
    env = {
        **os.environ,
        "SENTINEL_STATE_DIR": str(state_dir),
        "SENTINEL_BIND": f"127.0.0.1:{sandbox.free_port()}",
        "SENTINEL_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
    }
    run = DevServer(env)
    run.wait_for("press Ctrl-C to stop")
    password_file = state_dir / "redis" / "password"
    assert f"starting redis-server on 127.0.0.1:{redis_port} (password in {password_file})" in (
        run.text
    )
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
    password = password_file.read_text().strip()
    assert password not in run.text
    # Without the password, nothing; with it, Sentinel's queue and samples.
    assert not sandbox.answers(f"redis://127.0.0.1:{redis_port}/0")
    assert sandbox.answers(f"redis://:{password}@127.0.0.1:{redis_port}/0")
    command_lines = [" ".join(p.info["cmdline"] or []) for p in psutil.process_iter(["cmdline"])]
    assert not any(password in line for line in command_lines)
    # Another local user can neither read the password nor queue a job without it.
    assert as_another_user("cat", str(password_file)).returncode != 0
    tried = as_another_user("redis-cli", "-p", str(redis_port), "LPUSH", "rq:queue:sentinel", "x")
    assert "NOAUTH" in tried.stdout + tried.stderr
    run.ctrl_c()
    assert not sandbox.answers(f"redis://:{password}@127.0.0.1:{redis_port}/0")


def test_make_run_starts_a_worker_that_died_again(state_dir):
    env = {
        **os.environ,
        "SENTINEL_STATE_DIR": str(state_dir),
        "SENTINEL_BIND": f"127.0.0.1:{sandbox.free_port()}",
    }
    run = DevServer(env)
    run.wait_for("press Ctrl-C to stop")
    worker = next(
        child for child in psutil.Process(run.process.pid).children() if "worker" in child.cmdline()
    )
    worker.kill()
    run.wait_for("the worker stopped (exit status -9); starting it again")
    replacement = wait_for(
        lambda: [
            child
            for child in psutil.Process(run.process.pid).children()
            if "worker" in child.cmdline() and child.pid != worker.pid
        ],
        what="a new worker",
    )
    assert replacement[0].is_running()
    run.wait_for("event=worker_started")  # the new one, ready for Ctrl-C
    run.ctrl_c()
    assert "Traceback" not in run.text, run.text


def test_make_run_serves_https_with_a_certificate_it_makes(state_dir):
    port = sandbox.free_port()
    env = {
        **os.environ,
        "SENTINEL_STATE_DIR": str(state_dir),
        "SENTINEL_BIND": f"127.0.0.1:{port}",
        "SENTINEL_ADMIN_PASSWORD": "admin-password",
        "SENTINEL_TLS": "self-signed",
    }
    run = DevServer(env)
    run.wait_for("press Ctrl-C to stop")
    assert f"Sentinel is running at https://127.0.0.1:{port}/ui/" in run.text
    certificate = state_dir / "tls" / "cert.pem"
    assert f"SHA-256 {tls.fingerprint(certificate)}" in run.text
    assert stat.S_IMODE((state_dir / "tls" / "key.pem").stat().st_mode) == 0o600
    context = ssl.create_default_context(cafile=str(certificate))
    connection = http.client.HTTPSConnection("127.0.0.1", port, timeout=10, context=context)
    try:
        body = json.dumps({"username": "admin", "password": "admin-password"})
        connection.request("POST", "/login", body=body)
        answer = connection.getresponse()
        assert answer.status == 200, answer.read()
        session = json.loads(answer.read())["session"]
        # Keep-alive: the same TLS connection serves the next call.
        connection.request("GET", "/profile", headers={"X-Session": session})
        assert connection.getresponse().status == 200
    finally:
        connection.close()
    run.ctrl_c()
    assert "Traceback" not in run.text, run.text
