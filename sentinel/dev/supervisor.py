"""`make run`: the service and its worker on a sandbox PostgreSQL and Redis.

Without SENTINEL_PG_DSN, a sandbox cluster is created once under
$SENTINEL_STATE_DIR/sandbox (var/ in a checkout) and reused on later runs. When
nothing answers at SENTINEL_REDIS_URL, a local redis-server is started with its
data under $SENTINEL_STATE_DIR/redis. Ctrl-C (or SIGTERM) stops everything this
command started, and nothing else.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import psycopg2.extensions

from .. import config
from . import sandbox

DEFAULT_REDIS = "redis://127.0.0.1:6379/0"


def say(message):
    print(f"[sentinel] {message}", flush=True)


def without_password(dsn):
    """A connection string fit to print: its password left out."""
    params = psycopg2.extensions.parse_dsn(dsn)
    params.pop("password", None)
    return psycopg2.extensions.make_dsn(**params)


def prepare_cluster(state_dir, env):
    cluster = sandbox.Cluster(Path(state_dir) / "sandbox")
    created = not cluster.exists()
    if created:
        say(f"creating the sandbox cluster in {cluster.base} (owner: {cluster.osuser})")
        cluster.init()
    was_running = cluster.is_running()
    cluster.start()
    if created:
        cluster.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    env["SENTINEL_PG_DSN"] = cluster.dsn()
    env.setdefault("SENTINEL_PG_DATA", str(cluster.data))
    env.setdefault("SENTINEL_PG_CTL", cluster.pg_ctl_command())
    return None if was_running else cluster


def prepare_redis(state_dir, env):
    url = env.get("SENTINEL_REDIS_URL") or DEFAULT_REDIS
    if sandbox.answers(url):
        return None
    parts = urlsplit(url)
    if parts.scheme != "redis" or parts.hostname not in ("127.0.0.1", "localhost"):
        raise SystemExit(f"sentinel: nothing answers at SENTINEL_REDIS_URL={url}")
    say(f"starting redis-server on 127.0.0.1:{parts.port or 6379}")
    server = sandbox.RedisServer(parts.port or 6379, Path(state_dir) / "redis", persistent=True)
    return server.start()


def main():
    env = dict(os.environ)
    try:
        settings = config.load(env)
    except config.ConfigError as exc:
        raise SystemExit(f"sentinel: {exc}") from None
    state_dir = settings["state_dir"]
    env["SENTINEL_STATE_DIR"] = state_dir
    env["SENTINEL_BIND"] = settings["bind"]
    python = sys.executable

    stopping = []

    def request_stop(signum, frame):
        stopping.append(signum)

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)

    cluster = redis_server = cluster_dir = None
    processes = []
    try:
        if not env.get("SENTINEL_PG_DSN"):
            cluster = prepare_cluster(state_dir, env)
            cluster_dir = Path(state_dir) / "sandbox"
        redis_server = prepare_redis(state_dir, env)
        admin = subprocess.run(
            [python, "-m", "sentinel", "users", "ensure-admin"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if admin.returncode != 0:
            raise SystemExit(admin.stderr.strip() or "sentinel: could not prepare the admin user")
        worker = subprocess.Popen([python, "-m", "sentinel", "worker"], env=env)
        processes.append(worker)
        web = sandbox.Service(env)
        processes.append(web.spawn())
        bind = settings["bind"]
        if not web.wait_ready(others=(worker,)):
            raise SystemExit("sentinel: the service did not become ready; see the log above")
        say(f"Sentinel is running at http://{bind}/ui/")
        say(f"credentials: {admin.stdout.strip()}")
        where = f" (password in {cluster_dir}/password)" if cluster_dir else ""
        say(f"managed instance: {without_password(env['SENTINEL_PG_DSN'])}{where}")
        say("press Ctrl-C to stop")
        while not stopping and all(process.poll() is None for process in processes):
            time.sleep(0.2)
    finally:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(40)
            except subprocess.TimeoutExpired:
                process.kill()
        if redis_server:
            redis_server.stop()
        if cluster:
            say("stopping the sandbox cluster")
            cluster.stop()
        say("stopped")


if __name__ == "__main__":
    main()
