"""Throwaway PostgreSQL clusters and Redis servers on loopback.

`make run` keeps one of each under var/ as its sandbox; the test suite and the
benchmarks start their own on free ports. PostgreSQL refuses to run as root, so
when we are root the cluster belongs to a non-root OS user (created if needed).
"""

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import signal
import socket
import ssl
import stat
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import psycopg2
import redis

DEFAULT_OSUSER = "sentinel"


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_is_free(port):
    """True unless something listens on the port (TIME_WAIT left by a stopped
    server does not count: PostgreSQL binds with SO_REUSEADDR too)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def write_private(path, text):
    """Write a file only its owner may read (whatever the umask)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


def stored_password(path):
    """The password kept in `path` (0600), generated there the first time."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(24) + "\n")
    return path.read_text().strip()


def close_up(directory):
    """Take group and other access from what a directory holds (made so by
    an earlier version, or under a looser umask): files 0600, directories 0700."""
    for path in (directory, *directory.rglob("*")):
        mode = path.lstat().st_mode
        if stat.S_ISDIR(mode) or stat.S_ISREG(mode):
            private = 0o700 if stat.S_ISDIR(mode) else 0o600
            if stat.S_IMODE(mode) & 0o077:
                path.chmod(stat.S_IMODE(mode) & private)


def pg_bindir():
    """The newest PostgreSQL's binaries (SENTINEL_PG_BINDIR overrides)."""
    if os.environ.get("SENTINEL_PG_BINDIR"):
        return Path(os.environ["SENTINEL_PG_BINDIR"])
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name)
    )
    if candidates:
        return Path(candidates[-1])
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).resolve().parent
    raise RuntimeError("no PostgreSQL binaries found; set SENTINEL_PG_BINDIR")


def ensure_os_user(name):
    """The non-root account that owns clusters when we run as root."""
    if os.geteuid() != 0:
        return pwd.getpwuid(os.geteuid()).pw_name
    try:
        pwd.getpwnam(name)
    except KeyError:
        result = subprocess.run(
            [
                "useradd",
                "--system",
                "--user-group",
                "--no-create-home",
                "--home-dir",
                "/nonexistent",
                "--shell",
                "/usr/sbin/nologin",
                name,
            ],
            check=False,
            capture_output=True,
            text=True,
        )
        # 9: another process (a parallel test run) created it meanwhile.
        if result.returncode not in (0, 9):
            raise RuntimeError(f"useradd {name}: {result.stderr.strip()}") from None
    return name


class Cluster:
    """A PostgreSQL cluster in `base` (data/, sock/, postgres.log, password)."""

    def __init__(self, base, osuser=DEFAULT_OSUSER, bindir=None, throwaway=False):
        self.base = Path(base).resolve()
        self.data = self.base / "data"
        self.sock = self.base / "sock"
        self.log = self.base / "postgres.log"
        self.bindir = Path(bindir) if bindir else pg_bindir()
        self.osuser = ensure_os_user(osuser)
        self.throwaway = throwaway  # durability off: fine for tests, never for make run
        self.port = None

    # -- running commands as the cluster's owner ------------------------------

    def _as_owner(self):
        if os.geteuid() != 0:
            return {}
        entry = pwd.getpwnam(self.osuser)
        return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}

    def run(self, *args, check=True):
        return subprocess.run(
            [str(self.bindir / args[0]), *args[1:]],
            check=check,
            capture_output=True,
            text=True,
            cwd="/",
            # Own session: a Ctrl-C meant for `make run` must not reach the
            # server, which is stopped in order once its clients are gone.
            start_new_session=True,
            **self._as_owner(),
        )

    def pg_ctl_command(self):
        """The SENTINEL_PG_CTL template that controls this cluster."""
        prefix = f"runuser -u {self.osuser} -- " if os.geteuid() == 0 else ""
        return f"{prefix}{self.bindir / 'pg_ctl'} {{action}} -D {self.data} -w -t 60 -l {self.log}"

    # -- life cycle -------------------------------------------------------------

    @property
    def password(self):
        return (self.base / "password").read_text().strip()

    def exists(self):
        return (self.data / "PG_VERSION").exists()

    def init(self):
        self.base.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.sock.mkdir(mode=0o700, exist_ok=True)
        password_file = self.base / "password"
        write_private(password_file, secrets.token_urlsafe(18) + "\n")
        if os.geteuid() == 0:
            entry = pwd.getpwnam(self.osuser)
            for path in (self.base, self.sock, password_file):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        self.base.chmod(0o700)
        self.run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
            "--auth-host=scram-sha-256",
            "--auth-local=trust",
            f"--pwfile={password_file}",
        )
        settings = [
            "listen_addresses = '127.0.0.1'",
            f"unix_socket_directories = '{self.sock}'",
            "max_connections = 300",
            "shared_preload_libraries = 'pg_stat_statements'",
            "pg_stat_statements.track = all",
            "log_line_prefix = '%m [%p] %q%u@%d '",
            # Logical slots and publications, as a source registered through
            # Sequin's dialect needs them.
            "wal_level = logical",
            "include_if_exists = 'sandbox_port.conf'",
        ]
        if self.throwaway:
            settings += ["fsync = off", "synchronous_commit = off", "full_page_writes = off"]
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write("\n# Sentinel sandbox\n" + "\n".join(settings) + "\n")

    def _choose_port(self):
        port_file = self.data / "sandbox_port.conf"
        previous = None
        if port_file.exists():
            previous = int(port_file.read_text().split("=")[1])
        port = previous if previous and port_is_free(previous) else free_port()
        if port != previous:
            write_private(port_file, f"port = {port}\n")
            if os.geteuid() == 0:
                entry = pwd.getpwnam(self.osuser)
                os.chown(port_file, entry.pw_uid, entry.pw_gid)
        return port

    def _read_port(self):
        return int((self.data / "sandbox_port.conf").read_text().split("=")[1])

    def is_running(self):
        return self.run("pg_ctl", "status", "-D", str(self.data), check=False).returncode == 0

    def start(self):
        if self.is_running():
            self.port = self._read_port()
            return self
        self.port = self._choose_port()
        result = self.run(
            "pg_ctl",
            "start",
            "-D",
            str(self.data),
            "-w",
            "-t",
            "60",
            "-l",
            str(self.log),
            check=False,
        )
        if result.returncode != 0:
            tail = self.log.read_text()[-2000:] if self.log.exists() else result.stderr
            raise RuntimeError(f"PostgreSQL did not start:\n{tail}")
        return self

    def stop(self, mode="fast"):
        if self.exists() and self.is_running():
            self.run("pg_ctl", "stop", "-D", str(self.data), "-m", mode, "-w", check=False)

    def destroy(self):
        self.stop("immediate")
        shutil.rmtree(self.base, ignore_errors=True)

    # -- connecting ---------------------------------------------------------------

    def dsn(self, dbname="postgres"):
        return (
            f"host=127.0.0.1 port={self.port} dbname={dbname} user=postgres"
            f" password={self.password}"
        )

    def url(self, dbname="postgres"):
        return f"postgresql://postgres:{self.password}@127.0.0.1:{self.port}/{dbname}"

    def connect(self, dbname="postgres", **kwargs):
        conn = psycopg2.connect(self.dsn(dbname), **kwargs)
        conn.autocommit = True
        return conn

    def execute(self, sql, params=None, dbname="postgres"):
        conn = self.connect(dbname)
        try:
            with conn.cursor() as cursor:
                cursor.execute(sql, params)
                return cursor.fetchall() if cursor.description else None
        finally:
            conn.close()


def throwaway_cluster(prefix):
    """A started cluster in a new directory under /tmp (reachable by its owner),
    with pg_stat_statements; returns it and the directory to remove after."""
    base = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    os.chmod(base, 0o755)
    cluster = Cluster(base / "cluster", throwaway=True)
    cluster.init()
    cluster.start()
    cluster.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    return cluster, base


@contextlib.contextmanager
def temporary_cluster(prefix):
    """throwaway_cluster() for a block: stopped and removed after it."""
    cluster, base = throwaway_cluster(prefix)
    try:
        yield cluster
    finally:
        cluster.stop("immediate")
        shutil.rmtree(base, ignore_errors=True)


class RedisServer:
    """A redis-server child process on 127.0.0.1, or only on a unix socket in
    its directory (which only its owner may enter) with `private=True`. With
    `password=True`, clients must give the one kept in its directory (0600)."""

    def __init__(self, port=None, directory=None, persistent=False, private=False, password=False):
        self.private = private
        self.port = None if private else port or free_port()
        self.directory = Path(directory) if directory else None
        self.persistent = persistent
        self.process = None
        if (private or password) and self.directory is None:
            raise ValueError("a private Redis needs a directory for its socket or password")
        self.password = self._password() if password else None

    @property
    def password_file(self):
        return self.directory / "password"

    def _password(self):
        return stored_password(self.password_file)

    @property
    def socket(self):
        return self.directory / "redis.sock"

    @property
    def url(self):
        if self.private:
            return f"unix://{self.socket}?db=0"
        if self.password:
            return f"redis://:{self.password}@127.0.0.1:{self.port}/0"
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout=10):
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        if self.directory:
            # Its data (the append-only files, snapshots) is Sentinel's state.
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            close_up(self.directory)
        if self.private:
            args = [binary, "--port", "0", "--unixsocket", str(self.socket)]
            args += ["--unixsocketperm", "700"]
        else:
            args = [binary, "--bind", "127.0.0.1", "--port", str(self.port)]
            args += ["--protected-mode", "yes"]
        if self.password:
            # In a file only its owner reads: on the command line, `ps` would show it.
            conf = self.directory / "redis.conf"
            write_private(conf, f"requirepass {self.password}\n")
            args.insert(1, str(conf))
        if self.persistent and self.directory:
            args += ["--dir", str(self.directory), "--appendonly", "yes", "--save", "60 1"]
        else:
            args += ["--save", "", "--appendonly", "no"]
        self.process = subprocess.Popen(
            args,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd="/",
            start_new_session=True,
            umask=0o077,  # redis-server makes its files 0644 otherwise
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if answers(self.url):
                return self
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError(f"redis-server did not start at {self.url}")

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


def answers(url):
    """True when a Redis server answers PING at `url`."""
    client = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        with contextlib.suppress(Exception):
            client.close()


class Service:
    """Sentinel under gunicorn, on its SENTINEL_BIND, as systemd starts it.

    `log` is a path to append gunicorn's output to (None: our own stdout).
    """

    def __init__(self, env, log=None, app="sentinel:create_app_or_exit()", cwd=None):
        self.env = dict(env)
        self.env.setdefault("SENTINEL_BIND", f"127.0.0.1:{free_port()}")
        self.port = int(self.env["SENTINEL_BIND"].rsplit(":", 1)[1])
        https = self.env.get("SENTINEL_TLS") or self.env.get("SENTINEL_TLS_CERT")
        self.url = f"{'https' if https else 'http'}://127.0.0.1:{self.port}"
        self.log_path = Path(log) if log else None
        self.app = app
        # The checkout, where a test or bench application module lives.
        self.cwd = cwd or Path(__file__).resolve().parents[2]
        self.process = None
        self._log = None

    def spawn(self):
        self._log = None
        if self.log_path:
            fd = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            self._log = os.fdopen(fd, "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "sentinel", "serve", "--app", self.app],
            cwd=self.cwd,
            env=self.env,
            stdout=self._log,
            stderr=self._log,
            umask=0o077,  # what it writes (state, keys) is for its user only
        )
        return self.process

    @property
    def certificate(self):
        """The PEM certificate Sentinel serves HTTPS with, or None."""
        if self.env.get("SENTINEL_TLS_CERT"):
            return self.env["SENTINEL_TLS_CERT"]
        if self.env.get("SENTINEL_TLS") == "self-signed":
            return str(Path(self.env["SENTINEL_STATE_DIR"]) / "tls" / "cert.pem")
        return None

    def ssl_context(self):
        """A context trusting exactly the service's certificate (None over HTTP).

        A user's certificate names the host's public name rather than
        127.0.0.1, and is often issued by a CA: the certificate itself is the
        trust anchor, whatever it names and whoever signed it."""
        if self.certificate is None:
            return None
        context = ssl.create_default_context(cafile=self.certificate)
        context.check_hostname = False
        context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
        return context

    def wait_ready(self, timeout=60, others=()):
        """True once /status answers 200; False if a process dies or time runs out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(process.poll() is not None for process in (self.process, *others)):
                return False
            try:
                context = self.ssl_context()
                url = self.url + "/status"
                with urllib.request.urlopen(url, timeout=1, context=context) as answer:
                    if answer.status == 200:
                        return True
            except OSError:
                time.sleep(0.1)
        return False

    def start(self, timeout=60):
        self.spawn()
        if not self.wait_ready(timeout):
            self.stop()
            tail = self.log_path.read_text()[-3000:] if self.log_path else ""
            raise RuntimeError(f"gunicorn did not start on {self.url}\n{tail}")
        return self

    def stop(self):
        if self.process is not None:
            if self.process.poll() is None:
                self.process.terminate()
            try:
                self.process.wait(40)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None
        if self._log is not None:
            self._log.close()
            self._log = None
