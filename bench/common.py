"""Shared benchmark plumbing: timing, statistics, and the servers measured."""

import http.client
import json
import os
import shutil
import socket
import ssl
import statistics
import subprocess
import time
from pathlib import Path

from sentinel.dev import sandbox

ROOT = Path(__file__).resolve().parent.parent
REFAGENT = Path(os.environ.get("REFAGENT_SCRIPT", ROOT.parent / "shared/tools/refagent.sh"))


def summary(samples_ms):
    ordered = sorted(samples_ms)
    return {
        "median": statistics.median(ordered),
        "p10": ordered[len(ordered) // 10],
        "p90": ordered[(len(ordered) * 9) // 10],
        "n": len(ordered),
    }


def fmt(stats):
    spread = f"p10 {stats['p10']:.3f}, p90 {stats['p90']:.3f}, n={stats['n']}"
    return f"{stats['median']:8.3f} ms  ({spread})"


def verdict(met):
    return "MET" if met else "MISSED"


def read_route_target(raw_ms):
    """What a read route may take beside its raw SQL (or host reads) through
    one open connection: twice that, plus 2 ms for HTTP, the session check
    and the route's own work."""
    return 2 * raw_ms + 2


def speed(ours_ms, theirs_ms):
    """ "12.3x faster" or "1.4x slower": how Sentinel compares with another."""
    if ours_ms <= theirs_ms:
        return f"{theirs_ms / ours_ms:.1f}x faster"
    return f"{ours_ms / theirs_ms:.1f}x slower"


def timed(call, n, warmup=20):
    for _ in range(warmup):
        call()
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    return summary(samples)


def interleaved(calls, n, warmup=20, run=10):
    """Time several calls in alternating runs, so that machine noise hits them
    alike: each run is one untimed call then `run` timed calls back to back,
    and the runs of all the calls take turns until each has `n` timings.

    Each call is timed in its steady state, as a baseline timed alone would
    be, not right after whatever other call came before it: on a small
    virtual machine a process that sat idle for a millisecond takes 0.3 to
    0.7 ms longer to answer, which would charge a route for its neighbour.
    """
    for call in calls.values():
        for _ in range(warmup):
            call()
    samples = {name: [] for name in calls}
    while any(len(values) < n for values in samples.values()):
        for name, call in calls.items():
            call()
            for _ in range(min(run, n - len(samples[name]))):
                started = time.perf_counter()
                call()
                samples[name].append((time.perf_counter() - started) * 1000)
    return {name: summary(values) for name, values in samples.items()}


class KeepAliveClient:
    """One persistent HTTP/1.1 connection, as an API client would hold.

    Requests are written and answers read straight on the socket (the body
    by its Content-Length): Python's http.client would add about 0.2 ms of
    its own to every call, which is the client's cost, not the server's.
    """

    def __init__(self, port):
        self.socket = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""

    def request(self, method, path, body=None, headers=None, expect=200):
        payload = json.dumps(body).encode() if body is not None else b""
        lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        if body is not None:
            lines += ["Content-Type: application/json", f"Content-Length: {len(payload)}"]
        self.socket.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + payload)
        status, data = self._read_response()
        if status != expect:
            raise RuntimeError(f"{method} {path}: {status} {data[:200]!r}")
        return json.loads(data) if data else None

    def get_bytes(self, path, headers):
        """The answer's body as bytes: parsing it is the client's work, not
        the server's (0.8 ms for 150 kB of JSON here, 80 ms for 7 MB)."""
        lines = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        self.socket.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        status, data = self._read_response()
        if status != 200:
            raise RuntimeError(f"GET {path}: {status} {data[:200]!r}")
        return data

    def _read_response(self):
        while b"\r\n\r\n" not in self.buffer:
            self._receive()
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(self.buffer) < length:
            self._receive()
        data, self.buffer = self.buffer[:length], self.buffer[length:]
        return status, data

    def _receive(self):
        chunk = self.socket.recv(1 << 20)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        self.buffer += chunk

    def close(self):
        self.socket.close()


class Environment:
    """A throwaway cluster and Redis, and Sentinel under gunicorn on them."""

    def __init__(self):
        self.cluster, self.base = sandbox.throwaway_cluster("sentinel-bench-")
        self.redis = sandbox.RedisServer().start()
        self.services = []

    def env(self, **extra):
        return {
            **os.environ,
            "SENTINEL_CONFIG": "/nonexistent/sentinel.conf",
            "SENTINEL_STATE_DIR": str(self.base / f"state-{len(self.services)}"),
            "SENTINEL_PG_DSN": self.cluster.dsn(),
            "SENTINEL_PG_DATA": str(self.cluster.data),
            "SENTINEL_REDIS_URL": self.redis.url,
            **extra,
        }

    def service(self, app="bench.app:app", **extra):
        env = self.env(**extra)
        service = sandbox.Service(
            env, log=self.base / f"gunicorn-{len(self.services)}.log", app=app
        )
        self.services.append(service)
        return service.start()

    def create_user(self, service, username, password):
        subprocess.run(
            [
                str(ROOT / ".venv/bin/python"),
                "-m",
                "sentinel",
                "users",
                "create",
                username,
                "--password-stdin",
            ],
            input=password + "\n",
            env=service.env,
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
        )

    def close(self):
        for service in self.services:
            service.stop()
        self.redis.stop()
        self.cluster.stop("immediate")
        shutil.rmtree(self.base, ignore_errors=True)


class ReferenceAgent:
    """temBoard agent 7.11 through ../shared/tools/refagent.sh, when present.

    It speaks HTTPS over HTTP/1.0: every call is a new TLS connection, made
    with one reused SSL context (a fresh context per call would add ~35 ms).
    """

    def __init__(self, enabled=True):
        self.available = enabled and REFAGENT.exists()
        self.env = {}
        self.started_here = False

    def start(self):
        """Use the agent refagent.sh already runs, or start one (and stop it after)."""
        if not self.available:
            return self
        status = subprocess.run(["bash", str(REFAGENT), "status"], capture_output=True, text=True)
        if "agent: running" in status.stdout and "postgres: running" in status.stdout:
            output = status.stdout
        else:
            result = subprocess.run(
                ["bash", str(REFAGENT), "start"], capture_output=True, text=True
            )
            if result.returncode != 0:
                self.available = False
                self.error = result.stderr[-500:]
                return self
            output = result.stdout
            self.started_here = True
        for line in output.splitlines():
            if "=" in line and not line.startswith("#"):
                key, _, value = line.partition("=")
                self.env[key] = value.strip('"')
        self.port = int(self.env["BASE_URL"].rsplit(":", 1)[1])
        self.context = ssl.create_default_context()
        self.context.check_hostname = False
        self.context.verify_mode = ssl.CERT_NONE
        return self

    def connect_postgres(self, dbname="postgres"):
        """A connection to the agent's own cluster (trust auth on loopback)."""
        import psycopg2

        conn = psycopg2.connect(
            host="127.0.0.1", port=self.env["REFAGENT_PGPORT"], user="postgres", dbname=dbname
        )
        conn.autocommit = True
        return conn

    def request(self, method, path, body=None, headers=None, parse=True):
        """The answer, parsed (or as bytes: timings leave parsing to the client)."""
        connection = http.client.HTTPSConnection(
            "127.0.0.1", self.port, context=self.context, timeout=120
        )
        try:
            payload = json.dumps(body) if body is not None else None
            connection.request(method, path, body=payload, headers=headers or {})
            answer = connection.getresponse()
            data = answer.read()
            if answer.status != 200:
                raise RuntimeError(f"agent {method} {path}: {answer.status} {data[:200]!r}")
            return json.loads(data) if parse else data
        finally:
            connection.close()

    def time_routes(self, paths, n, title="Reference agent 7.11"):
        """Medians of GET on each path (a fresh session), printed and returned."""
        headers = {"X-Session": self.login()}

        def call(path):
            return self.request("GET", path, headers=headers, parse=False)

        figures = {path: timed(lambda path=path: call(path), n, 3) for path in paths}
        print(f"\n## {title} (HTTPS, HTTP/1.0: one TLS connection per call)")
        for path, stats in figures.items():
            print(f"  GET {path:44} {fmt(stats)}")
        return figures

    def login(self):
        body = {
            "username": self.env["REFAGENT_API_USER"],
            "password": self.env["REFAGENT_API_PASSWORD"],
        }
        return self.request("POST", "/login", body)["session"]

    def stop(self):
        if self.started_here:
            subprocess.run(["bash", str(REFAGENT), "stop"], capture_output=True)
