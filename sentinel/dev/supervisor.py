"""`make run`: the service and its worker on a sandbox PostgreSQL and Redis.

Without SENTINEL_PG_DSN, a sandbox cluster is created once under
$SENTINEL_STATE_DIR/sandbox (var/ in a checkout) and reused on later runs.
Without SENTINEL_REDIS_URL, Sentinel's own redis-server is started, on a unix
socket in $SENTINEL_STATE_DIR/redis (mode 0700) with its data there. Without
SENTINEL_ADMIN_PASSWORD, admin's password is the one generated once into
$SENTINEL_STATE_DIR/admin_password. A worker that dies is started again.
Ctrl-C (or SIGTERM) stops everything this command started, and nothing else.

Everything here and in the processes it starts writes under umask 077: the
state, keys, passwords and logs are for the user running it alone, and no
password is printed.
"""

import os
import pwd
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import psutil
import redis
from rq import Worker

from .. import config, tls
from . import sandbox

READY_TIMEOUT = 60


def say(message):
    print(f"[sentinel] {message}", flush=True)


def close_state_dir(state_dir, cluster_owner):
    """Only this user may enter the state directory, or also the sandbox
    cluster's owner when that is another (we run as root): it goes through to
    its own sandbox/, by its group, without reading anything else. A directory
    that is not ours, or shared like /tmp (sticky), is left as it is."""
    path = Path(state_dir)
    info = path.stat()
    if info.st_uid != os.geteuid() or info.st_mode & stat.S_ISVTX:
        return
    if cluster_owner in (None, pwd.getpwuid(os.geteuid()).pw_name):
        path.chmod(0o700)
        return
    os.chown(path, -1, pwd.getpwnam(cluster_owner).pw_gid)
    path.chmod(0o710)


def admin_credentials(settings, env):
    """The environment `users ensure-admin` runs with, and what to say of admin's
    password: SENTINEL_ADMIN_PASSWORD's, or the one kept in the state dir."""
    if settings["admin_password"]:
        return env, None
    password_file = Path(settings["state_dir"]) / "admin_password"
    password = sandbox.stored_password(password_file)
    return {**env, "SENTINEL_ADMIN_PASSWORD": password}, f"user admin, password in {password_file}"


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
    """Sentinel's own Redis, with its data in var/redis (0700): on a unix
    socket there, never whatever answers on a port. With SENTINEL_REDIS_URL,
    that Redis; when nothing answers at a local redis:// URL, Sentinel's own
    is started there, with a password generated into var/redis/password."""
    directory = Path(state_dir) / "redis"
    if not config.explicitly_set("redis_url", env):
        server = sandbox.RedisServer(directory=directory, persistent=True, private=True)
        say(f"starting redis-server on {server.socket}")
    else:
        url = env.get("SENTINEL_REDIS_URL") or config.load(env)["redis_url"]
        if sandbox.answers(url):
            return None
        parts = urlsplit(url)
        if parts.scheme != "redis" or parts.hostname not in ("127.0.0.1", "localhost"):
            raise SystemExit(f"sentinel: nothing answers at {config.without_password(url)}")
        server = sandbox.RedisServer(parts.port or 6379, directory, persistent=True, password=True)
        say(
            f"starting redis-server on 127.0.0.1:{server.port} (password in {server.password_file})"
        )
    server.start()
    env["SENTINEL_REDIS_URL"] = server.url
    return server


def web_ready(web, state_dir):
    """True once gunicorn's workers are booted and its control socket is up:
    the last lines it says when it starts."""
    try:
        workers = psutil.Process(web.process.pid).children()
    except psutil.NoSuchProcess:
        return True  # the loop below says it stopped
    return len(workers) >= 2 and (Path(state_dir) / "gunicorn.ctl").exists()


def worker_ready(url):
    """True once a Sentinel worker is registered with Redis."""
    connection = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
    try:
        return bool(Worker.all(connection=connection))
    except redis.RedisError:
        return False
    finally:
        connection.close()


def banner(settings, env, web, admin, cluster_dir):
    """What a user needs, said last, once the service and the worker are up."""
    scheme = "https" if web.certificate else "http"
    say(f"Sentinel is running at {scheme}://{settings['bind']}/ui/")
    if web.certificate:
        say(f"HTTPS certificate {web.certificate}, SHA-256 {tls.fingerprint(web.certificate)}")
    say(f"credentials: {admin}")
    where = f" (password in {cluster_dir}/password)" if cluster_dir else ""
    say(f"managed instance: {config.without_password(env['SENTINEL_PG_DSN'])}{where}")
    say("press Ctrl-C to stop")


def main():
    os.umask(0o077)
    env = dict(os.environ)
    try:
        settings = config.load(env)
    except config.ConfigError as exc:
        raise SystemExit(f"sentinel: {exc}") from None
    state_dir = settings["state_dir"]
    sandboxed = not env.get("SENTINEL_PG_DSN")
    cluster_owner = sandbox.ensure_os_user(sandbox.DEFAULT_OSUSER) if sandboxed else None
    close_state_dir(state_dir, cluster_owner)
    env["SENTINEL_STATE_DIR"] = state_dir
    env["SENTINEL_BIND"] = settings["bind"]
    python = sys.executable

    stopping = []

    def request_stop(signum, frame):
        stopping.append(signum)

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)

    cluster = redis_server = cluster_dir = None
    worker = web = None
    try:
        if sandboxed:
            cluster = prepare_cluster(state_dir, env)
            cluster_dir = Path(state_dir) / "sandbox"
        redis_server = prepare_redis(state_dir, env)
        admin_env, credentials = admin_credentials(settings, env)
        admin = subprocess.run(
            [python, "-m", "sentinel", "users", "ensure-admin"],
            env=admin_env,
            capture_output=True,
            text=True,
            check=False,
        )
        if admin.returncode != 0:
            raise SystemExit(admin.stderr.strip() or "sentinel: could not prepare the admin user")
        worker = subprocess.Popen([python, "-m", "sentinel", "worker"], env=env)
        web = sandbox.Service(env)
        web.spawn()
        if not web.wait_ready(timeout=READY_TIMEOUT, others=(worker,)):
            raise SystemExit("sentinel: the service did not become ready; see the log above")
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline and not (
            worker_ready(env["SENTINEL_REDIS_URL"]) and web_ready(web, state_dir)
        ):
            time.sleep(0.2)
        banner(settings, env, web, credentials or admin.stdout.strip(), cluster_dir)
        while not stopping and web.process.poll() is None:
            if worker.poll() is not None:
                # As systemd would: a worker that died is started again.
                say(f"the worker stopped (exit status {worker.returncode}); starting it again")
                worker = subprocess.Popen([python, "-m", "sentinel", "worker"], env=env)
            time.sleep(0.2)
        if web.process.poll() is not None and not stopping:
            say(f"the web service stopped (exit status {web.process.returncode})")
    finally:
        for process in (worker, web and web.process):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in (worker, web and web.process):
            if process is None:
                continue
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
