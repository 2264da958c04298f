"""Scale out: two web processes and three worker processes sharing one
PostgreSQL state and one Redis, as on five hosts (each process a state
directory of its own, the keys given to all in the environment). Sources
added through one web process are read back through the other and collected
by whichever worker is free; one worker runs the dispatcher; a worker killed
in the middle of a run loses no source; no run is written, or run, twice."""

import json
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from urllib.parse import quote

import psutil
import psycopg2
import pytest
from cryptography.fernet import Fernet
from polling import wait_for

from sentinel.dev import sandbox

ORDINARY = 6  # sources collecting {"kpi": 2}
WORKERS = 3
INTERVAL = 2  # s
RECOVERY = 60  # s a killed worker's sources may take to be collected again
HELD_UP = 2.5  # s the slow source's run waits on the lock before its worker is killed


class PoolBackends:
    """Samples pg_stat_activity every 0.2 s: the collection's connections
    (application `sentinel-pool`) to the test database, by source (each
    source logs in as a role of its own) and by the worker process holding
    them (their client port found among the workers' sockets)."""

    def __init__(self, cluster, dbname, workers):
        self.conn = cluster.connect()
        self.own = cluster.connect()
        self.dbname = dbname
        self.workers = workers
        self.most_open = {}  # role -> connections open at once
        self.most_active = {}  # role -> connections running a query at once
        self.holders = {}  # worker pid -> roles it had a connection of
        self.ports = {}  # client port -> worker pid, once found
        self.error = None
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()

    def backends(self, watcher=True):
        """(role, client port, state, wait event type, s since its query began)
        of each connection; `watcher` False: through the caller's own connection."""
        conn = self.conn if watcher else self.own
        with conn.cursor() as cursor:
            cursor.execute(
                "SELECT usename, client_port, state, wait_event_type,"
                " extract(epoch FROM now() - query_start) FROM pg_stat_activity"
                " WHERE application_name = 'sentinel-pool' AND datname = %s",
                (self.dbname,),
            )
            return cursor.fetchall()

    def worker_of(self, port):
        """The pid of the worker process whose socket has this local port, or None."""
        if port in self.ports:
            return self.ports[port]
        for process in self.workers:
            try:
                sockets = psutil.Process(process.pid).net_connections(kind="tcp")
            except psutil.NoSuchProcess:
                continue
            if any(sock.laddr and sock.laddr.port == port for sock in sockets):
                self.ports[port] = process.pid
                return process.pid
        return None

    def _watch(self):
        try:
            while not self.stopping.wait(0.2):
                self._sample()
        except Exception as exc:
            self.error = exc  # the tests that read the figures say so

    def _sample(self):
        opened, active = {}, {}
        for role, port, state, *_ in self.backends():
            opened[role] = opened.get(role, 0) + 1
            active[role] = active.get(role, 0) + (state == "active")
            pid = self.worker_of(port)
            if pid is not None:
                self.holders.setdefault(pid, set()).add(role)
        for role, count in opened.items():
            self.most_open[role] = max(self.most_open.get(role, 0), count)
        for role, count in active.items():
            self.most_active[role] = max(self.most_active.get(role, 0), count)

    def stop(self):
        self.stopping.set()
        self.thread.join(5)
        self.conn.close()
        self.own.close()


class Deployment:
    """The five processes, the test database the sources point at, one role
    per source, and a connection to the shared state."""

    def __init__(self, base, cluster):
        self.base = base
        self.cluster = cluster
        suffix = uuid.uuid4().hex[:10]
        self.state_db = f"scaleout_state_{suffix}"
        self.dbname = f"scaleout_{suffix}"
        self.roles = [f"scaleout_{suffix}_{n}" for n in range(ORDINARY + 1)]
        self.slow_role = self.roles[-1]  # also collects table_stats, which a lock can hold up
        self.password = secrets.token_urlsafe(12)
        self.names = [f"scaleout-{n}" for n in range(ORDINARY)] + ["scaleout-slow"]
        self.redis = None
        self.webs, self.workers, self.logs = [], [], []
        self.children = []

    def prepare_cluster(self):
        run = self.cluster.execute
        for dbname in (self.state_db, self.dbname):
            run(f'CREATE DATABASE "{dbname}"')
        for role in self.roles:
            run(f'CREATE ROLE "{role}" LOGIN PASSWORD %s IN ROLE pg_monitor', (self.password,))
        run("CREATE TABLE held (id int)", dbname=self.dbname)

    def env(self, name):
        """A process's environment: its own state directory, all else shared."""
        return {
            **os.environ,
            "SENTINEL_STATE_DIR": str(self.base / name),
            "SENTINEL_DATABASE": self.cluster.url(self.state_db),
            "SENTINEL_REDIS_URL": self.redis.url,
            "SENTINEL_PG_DSN": self.cluster.dsn(),
            "SENTINEL_HOSTNAME": "sentinel.test",
            "SENTINEL_SECRET_KEY": self.secret_key,
            "SENTINEL_POOL_SECRET_KEY": self.pool_key,
            "SENTINEL_POOL_DISPATCH_INTERVAL": "1",
            # The managed instance's own collectors out of the way.
            "SENTINEL_DASHBOARD_INTERVAL": "3600",
            "SENTINEL_MONITORING_INTERVAL": "3600",
            "SENTINEL_STATEMENTS_INTERVAL": "86400",
        }

    def start(self):
        self.prepare_cluster()
        self.redis = sandbox.RedisServer().start()
        self.secret_key = secrets.token_hex(32)
        self.pool_key = Fernet.generate_key().decode()
        # The first to start migrates the empty state; the other waits on the lock.
        self.webs = [
            sandbox.Service(self.env(f"web-{name}"), log=self.base / f"web-{name}.log")
            for name in ("a", "b")
        ]
        for web in self.webs:
            web.spawn()
        for web in self.webs:
            assert web.wait_ready(60), (self.base / "web-a.log").read_text()[-3000:]
        self.token = self.admin_token()
        for number in range(WORKERS):
            log = self.base / f"worker-{number}.log"
            self.logs.append(log)
            with open(log, "wb") as output:
                self.workers.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "sentinel", "worker"],
                        env=self.env(f"worker-{number}"),
                        stdout=output,
                        stderr=subprocess.STDOUT,
                    )
                )
        self.watch = PoolBackends(self.cluster, self.dbname, self.workers)

    def admin_token(self):
        """An API token of a new admin, made with the command line as a DBA would."""
        env = self.env("cli")
        for args, stdin in (
            (("users", "create", "scaleout", "--password-stdin"), "scaleout-password\n"),
            (("tokens", "create", "scaleout", "tests"), ""),
        ):
            done = subprocess.run(
                [sys.executable, "-m", "sentinel", *args],
                input=stdin,
                env=env,
                check=True,
                capture_output=True,
                text=True,
            )
        return done.stdout.strip().splitlines()[-1]

    def request(self, web, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Token": self.token, "Content-Type": "application/json"}
        request = urllib.request.Request(web.url + path, data, headers, method=method)
        with urllib.request.urlopen(request, timeout=10) as answer:
            text = answer.read()
            return answer.status, json.loads(text) if text else None

    def conn_str(self, role):
        return (
            f"postgresql://{role}:{quote(self.password)}@127.0.0.1:{self.cluster.port}"
            f"/{self.dbname}?sslmode=disable"
        )

    def add_sources(self):
        """Every source through web process A, in pgwatch's dialect."""
        for name, role in zip(self.names, self.roles, strict=True):
            metrics = {"kpi": INTERVAL}
            if role == self.slow_role:
                metrics["table_stats"] = INTERVAL
            body = {"Name": name, "ConnStr": self.conn_str(role), "Metrics": metrics}
            status, _ = self.request(self.webs[0], "POST", "/source", body)
            assert status == 201

    def state(self, sql, params=None):
        conn = psycopg2.connect(self.cluster.dsn(self.state_db))
        try:
            with conn, conn.cursor() as cursor:
                cursor.execute(sql, params)
                return cursor.fetchall()
        finally:
            conn.close()

    def last_collected(self):
        """{source name: when its last sample answered, epoch s}, collected ones only."""
        rows = self.state(
            "SELECT s.name, max(p.collected_at) FROM pool_source s"
            " JOIN pool_sample p ON p.source_id = s.id GROUP BY s.name"
        )
        return dict(rows)

    def log_lines(self, pattern):
        """[(worker index, line)] matching `pattern` in the workers' logs."""
        found = []
        for index, log in enumerate(self.logs):
            for line in log.read_text(errors="replace").splitlines():
                if re.search(pattern, line):
                    found.append((index, line))
        return found

    def stop(self):
        if getattr(self, "watch", None):
            self.watch.stop()
        for process in self.workers:
            if process.poll() is None:
                process.terminate()
        for process in self.workers:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for child in self.children:  # a killed worker's scheduler and cron, if still there
            try:
                child.kill()
            except psutil.NoSuchProcess:
                pass
        for web in self.webs:
            web.stop()
        if self.redis:
            self.redis.stop()
        for dbname in (self.dbname, self.state_db):
            self.cluster.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
        for role in self.roles:
            self.cluster.execute(f'DROP ROLE IF EXISTS "{role}"')


@pytest.fixture(scope="module")
def deployment(tmp_path_factory, pg_cluster):
    """Two web processes and three workers, with every source added through
    web process A and collected at least once."""
    deployment = Deployment(tmp_path_factory.mktemp("scaleout"), pg_cluster)
    try:
        deployment.start()
        deployment.add_sources()
        wait_for(
            lambda: len(deployment.last_collected()) == len(deployment.names),
            timeout=30,
            step=0.5,
            what="a first sample of every source",
        )
        yield deployment
    finally:
        deployment.stop()


@pytest.fixture(scope="module")
def killed(deployment, pg_cluster):
    """The worker running the slow source's collection, killed (SIGKILL)
    while that run waits on a lock the test holds; then the lock let go and
    every source given time to be collected again. Yields when it was killed
    and the kill's victim's index."""
    locker = pg_cluster.connect(deployment.dbname)
    locker.autocommit = False
    try:
        with locker.cursor() as cursor:
            cursor.execute("LOCK TABLE held IN ACCESS EXCLUSIVE MODE")

        def victim():
            for role, port, _, wait, waited in deployment.watch.backends(watcher=False):
                if role == deployment.slow_role and wait == "Lock" and waited > HELD_UP:
                    return deployment.watch.worker_of(port)
            return None

        pid = wait_for(victim, timeout=20, step=0.1, what="a run of the slow source held up")
        process = psutil.Process(pid)
        deployment.children += process.children(recursive=True)
        os.kill(pid, signal.SIGKILL)
        killed_at = time.time()
    finally:
        locker.rollback()
        locker.close()
    index = [process.pid for process in deployment.workers].index(pid)
    deployment.workers[index].wait(10)

    def every_source_collected_again():
        collected = deployment.last_collected()
        return all(collected.get(name, 0) > killed_at for name in deployment.names)

    wait_for(
        every_source_collected_again,
        timeout=RECOVERY,
        step=0.5,
        what="every source collected after the kill",
    )
    yield {"at": killed_at, "index": index}


def test_a_source_added_through_one_web_process_is_read_back_through_the_other(deployment):
    web_b = deployment.webs[1]
    status, shown = deployment.request(web_b, "GET", f"/source/{deployment.names[0]}")
    assert status == 200
    assert shown["Metrics"] == {"kpi": INTERVAL}
    assert f"{deployment.roles[0]}:" in shown["ConnStr"]
    assert deployment.password not in shown["ConnStr"]
    _, listed = deployment.request(web_b, "GET", "/source")
    assert sorted(source["Name"] for source in listed) == sorted(deployment.names)


def test_sources_are_collected_by_more_than_one_worker(deployment, pg_cluster):
    # One worker can keep up with these few sources alone, so a worker is
    # kept busy: the slow source's run waits on a lock the test holds, and
    # the sources of the worker stuck in it must go to one that is free.
    locker = pg_cluster.connect(deployment.dbname)
    locker.autocommit = False
    try:
        with locker.cursor() as cursor:
            cursor.execute("LOCK TABLE held IN ACCESS EXCLUSIVE MODE")
        wait_for(
            lambda: len(deployment.watch.holders) >= 2,
            # 15 s was too short with the whole suite loading both cores.
            timeout=45,
            what="connections of the sources in two workers",
        )
    finally:
        locker.rollback()
        locker.close()
    workers = {process.pid for process in deployment.workers}
    assert set(deployment.watch.holders) <= workers
    assert deployment.watch.error is None


def test_exactly_one_worker_runs_the_dispatcher(deployment):
    wait_for(
        lambda: len(deployment.log_lines("event=cron_(leader|standby)")) == WORKERS,
        timeout=15,
        what="every worker's cron process leading or standing by",
    )
    leaders = deployment.log_lines("event=cron_leader")
    assert len(leaders) == 1
    standing_by = {index for index, _ in deployment.log_lines("event=cron_standby")}
    assert standing_by == set(range(WORKERS)) - {leaders[0][0]}


def test_a_worker_killed_mid_run_loses_no_source(deployment, killed):
    collected = deployment.last_collected()
    assert sorted(collected) == sorted(deployment.names)
    assert all(at > killed["at"] for at in collected.values())
    others = [p for i, p in enumerate(deployment.workers) if i != killed["index"]]
    assert all(process.poll() is None for process in others)


def test_no_run_is_written_twice(deployment, killed):
    twice = deployment.state(
        "SELECT source_id, dbname, metric, slot, count(*) FROM pool_sample"
        " GROUP BY 1, 2, 3, 4 HAVING count(*) > 1"
    )
    assert twice == []
    runs = deployment.state("SELECT count(*) FROM pool_sample")[0][0]
    assert runs > len(deployment.names)


def test_no_source_is_collected_twice_at_once(deployment, killed):
    # The slow source's run waited on the lock past its 2 s slot: the runs
    # due meanwhile must not have started beside it.
    assert deployment.watch.error is None
    assert deployment.watch.most_active[deployment.slow_role] == 1
    assert max(deployment.watch.most_active.values()) == 1


def test_no_source_has_more_than_two_connections_open(deployment, killed):
    assert deployment.watch.error is None
    assert set(deployment.watch.most_open) == set(deployment.roles)
    assert max(deployment.watch.most_open.values()) <= 2
