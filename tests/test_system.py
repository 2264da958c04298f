"""docs/install.md, for real: Sentinel's wheel installed as the document says
in a Debian 12 container booted with systemd as PID 1 (systemd-nspawn), then
checked the way a DBA would: the units run, HTTPS answers through nginx
(which keeps 300 slow clients away from Sentinel), the worker collects,
PostgreSQL restarts through its own unit and survives Sentinel.

How the container is booted on these machines: /work/shared/notes/
systemd-in-a-container.md. The debootstrapped root is cached outside the
checkout, under ~/.cache/sentinel-tests/system-root/ (keyed by its package
list); each session extracts it to a temporary directory, installs the wheel
built from the checkout, boots, and removes it all afterwards. Needs root,
systemd-container and debootstrap (`make test` installs them).
"""

import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from polling import wait_for

CHECKOUT = Path(__file__).resolve().parent.parent
# Outside the checkout: a fresh clone on a machine that already ran this
# module (CI's, in another folder) extracts the root instead of paying
# debootstrap's minutes again.
CACHE = (
    Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    / "sentinel-tests"
    / "system-root"
)

SUITE = "bookworm"
# libpam-systemd provides default-logind, which polkitd depends on: debootstrap
# does not resolve the alternative by itself and leaves polkitd unconfigured.
PACKAGES = (
    "systemd,systemd-sysv,dbus,libpam-systemd,polkitd,postgresql-15,redis-server,"
    "python3-venv,nginx,curl,ca-certificates"
)
HOST_SOURCES = Path("/etc/apt/sources.list.d/debian.sources")
HOST_CA = Path("/usr/local/share/ca-certificates")
CONTAINER_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

UNITS = ("sentinel", "sentinel-worker")
MAIN_UNITS = ("sentinel@main", "sentinel-worker@main")
# The plain instance behind nginx (its certificate), the templated one serving
# HTTPS itself (Sentinel's self-signed certificate).
CERT = "/etc/nginx/sentinel/cert.pem"
MAIN_CERT = "/var/lib/sentinel/main/tls/cert.pem"
PG_UNIT = "postgresql@15-main.service"
ALICE_PASSWORD = "alice-" + secrets.token_hex(8)
REDIS_PASSWORD = secrets.token_hex(16)
AGENT_KEY = secrets.token_hex(16)
HOSTNAME = "sentinel-system-test.example"


def run(args, timeout=120, **kwargs):
    return subprocess.run(
        args, capture_output=True, text=True, check=False, timeout=timeout, **kwargs
    )


def output_of(result):
    return (
        f"exit {result.returncode}\n--- stdout\n{result.stdout[-4000:]}"
        f"\n--- stderr\n{result.stderr[-4000:]}"
    )


# -- the root file system: debootstrapped once, cached as a tarball ---------------------------


def host_mirror():
    """The Debian mirror apt already uses on this machine."""
    if HOST_SOURCES.exists():
        for stanza in HOST_SOURCES.read_text().split("\n\n"):
            fields = dict(
                line.split(":", 1)
                for line in stanza.splitlines()
                if re.match(r"^[A-Za-z-]+:", line)
            )
            if SUITE in fields.get("Suites", "").split() and fields.get("URIs"):
                return fields["URIs"].split()[0]
    sources = Path("/etc/apt/sources.list")
    if sources.exists():
        for line in sources.read_text().splitlines():
            words = line.split()
            if len(words) >= 3 and words[0] == "deb" and words[2] == SUITE:
                return words[1]
    return "http://deb.debian.org/debian"


def tar_compression():
    return (["-I", "zstd -T0 -3"], "tar.zst") if shutil.which("zstd") else (["-z"], "tar.gz")


def cached_root(root, log):
    """Fill the empty directory `root` with the Debian root, from the cache when
    it holds one for this package list, else by debootstrap (then cached)."""
    mirror = host_mirror()
    flags, suffix = tar_compression()
    key = hashlib.sha256(f"minbase {SUITE} {mirror} {PACKAGES}".encode()).hexdigest()[:16]
    tarball = CACHE / f"debian-{SUITE}-{key}.{suffix}"
    if tarball.exists():
        result = run(["tar", *flags, "--numeric-owner", "--xattrs", "-C", root, "-xf", tarball])
        assert result.returncode == 0, f"cannot extract {tarball}:\n{output_of(result)}"
        return
    assert shutil.which("debootstrap"), "debootstrap is missing: apt-get install debootstrap"
    with open(log, "w") as output:
        process = subprocess.run(
            ["debootstrap", "--variant=minbase", f"--include={PACKAGES}", SUITE, root, mirror],
            stdout=output,
            stderr=subprocess.STDOUT,
            check=False,
            timeout=600,
        )
    detail = Path(root, "debootstrap", "debootstrap.log")
    assert process.returncode == 0, (
        f"debootstrap failed (exit {process.returncode}):\n{log.read_text()[-3000:]}\n"
        + (detail.read_text()[-3000:] if detail.exists() else "")
    )
    for deb in Path(root, "var/cache/apt/archives").glob("*.deb"):
        deb.unlink()
    CACHE.mkdir(parents=True, exist_ok=True)
    partial = tarball.with_name(f"{tarball.name}.partial-{os.getpid()}")
    result = run(
        ["tar", *flags, "--numeric-owner", "--xattrs", "-C", root, "-cf", partial, "."],
        timeout=300,
    )
    assert result.returncode == 0, f"cannot cache the root in {partial}:\n{output_of(result)}"
    os.replace(partial, tarball)
    for stale in CACHE.glob("debian-*"):
        if stale != tarball and ".partial-" not in stale.name:
            stale.unlink()


def build_wheel(workdir):
    """The wheel `make dist` builds, from the checkout as it is now, built in a
    copy so that the checkout's build/ is left alone."""
    source = workdir / "source"
    source.mkdir()
    for name in ("pyproject.toml", "requirements.txt", "README.md"):
        shutil.copy2(CHECKOUT / name, source / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in ("sentinel", "static", "templates", "systemd"):
        shutil.copytree(CHECKOUT / name, source / name, symlinks=True, ignore=ignore)
    outdir = workdir / "dist"
    result = run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", outdir, source], timeout=300
    )
    wheels = list(outdir.glob("sentinel-*-py3-none-any.whl"))
    assert result.returncode == 0 and len(wheels) == 1, f"the wheel: {output_of(result)}"
    return wheels[0]


# -- docs/install.md, step by step ------------------------------------------------------------


def conf(serving, redis_db):
    return f"""\
pg_dsn = "host=/var/run/postgresql port=5432 dbname=postgres user=postgres"
pg_ctl = "systemctl {{action}} postgresql@15-main"
{serving}redis_url = "redis://:{REDIS_PASSWORD}@127.0.0.1:6379/{redis_db}"
hostname = "{HOSTNAME}"
agent_key = "{AGENT_KEY}"
dashboard_interval = 1
monitoring_interval = 10
"""


BEHIND_NGINX = """\
bind = "127.0.0.1:2344"
trusted_proxies = 1
cookie_secure = true
"""
SENTINEL_CONF = conf(BEHIND_NGINX, redis_db=0)
MAIN_CONF = conf('bind = "127.0.0.1:2346"\ntls = "self-signed"\n', redis_db=1) + (
    'state_dir = "/var/lib/sentinel/main"\n'
)

# Run in the root with systemd-nspawn, not booted: the docs' commands, except
# that `systemctl daemon-reload` and `enable --now` become the symlinks
# `enable` would make and `systemctl reload nginx` is left out (the container
# boots afterwards), and $EDITOR becomes a here-document.
INSTALL = f"""\
set -eux
update-ca-certificates   # the host's CA, for pip (not a docs step)

# Once per host
apt-get install -y python3-venv redis-server polkitd nginx
python3 -m venv /opt/sentinel
/opt/sentinel/bin/pip install /tmp/@WHEEL@
/opt/sentinel/bin/sentinel --version

# Configure
install -d -m 0750 -o postgres -g postgres /etc/sentinel
cat > /etc/sentinel/sentinel.conf <<'EOF'
{SENTINEL_CONF}EOF
chown postgres:postgres /etc/sentinel/sentinel.conf && chmod 0600 /etc/sentinel/sentinel.conf
runuser -u postgres -- /opt/sentinel/bin/sentinel check-config

# Controlling PostgreSQL
SHARE=$(/opt/sentinel/bin/python -c \\
    'import sentinel, os; print(os.path.dirname(sentinel.__file__))')
install -m 0644 $SHARE/systemd/60-sentinel-postgresql.rules /etc/polkit-1/rules.d/

# Redis
printf '\\nrequirepass {REDIS_PASSWORD}\\n' >> /etc/redis/redis.conf

# HTTPS: nginx in front
install -d -m 0700 /etc/nginx/sentinel
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 825 \\
    -subj "/CN={HOSTNAME}" \\
    -addext "subjectAltName=DNS:{HOSTNAME},DNS:localhost,IP:127.0.0.1" \\
    -keyout /etc/nginx/sentinel/key.pem -out /etc/nginx/sentinel/cert.pem
openssl x509 -in /etc/nginx/sentinel/cert.pem -noout -fingerprint -sha256
cp $SHARE/systemd/nginx-sentinel.conf /etc/nginx/sites-available/sentinel
ln -s /etc/nginx/sites-available/sentinel /etc/nginx/sites-enabled/sentinel
rm /etc/nginx/sites-enabled/default
nginx -t

# Start
cp $SHARE/systemd/sentinel.service $SHARE/systemd/sentinel-worker.service /etc/systemd/system/
cd /etc/systemd/system/multi-user.target.wants
ln -s /etc/systemd/system/sentinel.service sentinel.service
ln -s /etc/systemd/system/sentinel-worker.service sentinel-worker.service

# Several instances on one host
cp $SHARE/systemd/sentinel@.service $SHARE/systemd/sentinel-worker@.service /etc/systemd/system/
cat > /etc/sentinel/main.conf <<'EOF'
{MAIN_CONF}EOF
chown postgres:postgres /etc/sentinel/main.conf && chmod 0600 /etc/sentinel/main.conf
ln -s /etc/systemd/system/sentinel@.service sentinel@main.service
ln -s /etc/systemd/system/sentinel-worker@.service sentinel-worker@main.service
"""


class Container:
    """A Debian root booted with systemd-nspawn; commands run inside through nsenter."""

    def __init__(self, base):
        self.base = base
        self.root = base / "root"
        self.root.mkdir()
        self.name = f"sentinel-test-{os.getpid()}"
        self.boot_log = base / "boot.log"
        self.nspawn = None
        self.pid = None
        self.failed_units = ""

    def prepare(self, wheel):
        for tool, package in (("systemd-nspawn", "systemd-container"), ("nsenter", "util-linux")):
            assert shutil.which(tool), f"{tool} is missing: apt-get install {package}"
        cached_root(self.root, self.base / "debootstrap.log")
        if HOST_SOURCES.exists():
            shutil.copy2(HOST_SOURCES, self.root / "etc/apt/sources.list.d/debian.sources")
            Path(self.root, "etc/apt/sources.list").unlink(missing_ok=True)
        for certificate in HOST_CA.glob("*.crt"):
            shutil.copy2(certificate, self.root / "usr/local/share/ca-certificates")
        Path(self.root, "etc/hostname").write_text("sentinel-system-test\n")
        script = self.base / "install.sh"
        script.write_text(INSTALL.replace("@WHEEL@", wheel.name))
        result = run(
            [
                *("systemd-nspawn", "-q", "-D", self.root, "--register=no", "--keep-unit"),
                f"--machine={self.name}",
                f"--bind-ro={wheel}:/tmp/{wheel.name}",
                f"--bind-ro={script}:/root/install.sh",
                *("-E", "DEBIAN_FRONTEND=noninteractive"),
                *("sh", "/root/install.sh"),
            ],
            timeout=300,
        )
        assert result.returncode == 0, f"installing as docs/install.md says:\n{output_of(result)}"

    def boot(self):
        with open(self.boot_log, "wb") as log:
            self.nspawn = subprocess.Popen(
                [
                    *("systemd-nspawn", "-b", "-D", self.root, f"--machine={self.name}"),
                    *("--register=no", "--keep-unit", "--private-network"),
                    *("--capability=CAP_BPF", "--system-call-filter=bpf"),
                ],
                env={**os.environ, "SYSTEMD_NSPAWN_UNIFIED_HIERARCHY": "1"},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # setsid
            )

        def container_systemd():
            if self.nspawn.poll() is not None:
                raise AssertionError(
                    f"systemd-nspawn exited ({self.nspawn.returncode}):\n{self.boot_tail()}"
                )
            for entry in Path("/proc").iterdir():
                if not entry.name.isdigit():
                    continue
                try:
                    stat = (entry / "stat").read_text()
                    comm = (entry / "comm").read_text().strip()
                except (OSError, ValueError):
                    continue
                if int(stat.rpartition(")")[2].split()[1]) == self.nspawn.pid and (
                    comm == "systemd"
                ):
                    return int(entry.name)
            return None

        self.pid = waited(container_systemd, 30, "the container's systemd", self.boot_tail)
        state = waited(
            lambda: self.sh("systemctl", "is-system-running", "--wait", timeout=150).stdout,
            20,
            "systemctl is-system-running to answer",
            self.boot_tail,
        ).strip()
        if state == "degraded":
            self.failed_units = self.sh("systemctl", "--failed", "--no-pager").stdout
        assert state in ("running", "degraded"), (
            f"the container booted to {state!r}:\n"
            + self.sh("systemctl", "--failed", "--no-pager").stdout
            + self.boot_tail()
        )

    def boot_tail(self):
        return self.boot_log.read_text(errors="replace")[-4000:]

    def sh(self, *args, input=None, timeout=60):
        """Run a command inside the booted container, with a clean environment."""
        return run(
            ["env", "-i", f"PATH={CONTAINER_PATH}", "nsenter", "-t", str(self.pid), "-a"]
            + ["-r", "-w", *args],
            input=input,
            timeout=timeout,
        )

    def journal(self, *units):
        units = units or UNITS
        result = self.sh("journalctl", *(f"-u{unit}" for unit in units), "--no-pager", "-n200")
        failed = f"\n--- failed units at boot\n{self.failed_units}" if self.failed_units else ""
        return f"\n--- journalctl -u {' -u '.join(units)}\n{result.stdout}{result.stderr}{failed}"

    def https(
        self, method, path, port=2345, cert=CERT, session=None, body=None, headers=(), source=None
    ):
        """curl inside the container, from the address `source` if given:
        (status, content type, body text)."""
        args = ["curl", "-sS", "--cacert", cert, "-X", method]
        args += ["-w", "\n%{http_code} %{content_type}"]
        if source:
            args += ["--interface", source]
        if session:
            args += ["-H", f"X-Session: {session}"]
        for header in headers:
            args += ["-H", header]
        if body is not None:
            args += ["-H", "Content-Type: application/json", "--data-binary", "@-"]
        result = self.sh(
            *args, f"https://127.0.0.1:{port}{path}", input=json.dumps(body), timeout=120
        )
        text, _, last = result.stdout.rpartition("\n")
        status, _, content_type = last.partition(" ")
        if result.returncode != 0 or not status.isdigit():
            return 0, "", f"curl failed: {output_of(result)}"
        return int(status), content_type, text

    def api(self, method, path, **kwargs):
        status, content_type, text = self.https(method, path, **kwargs)
        assert status == 200 and content_type.startswith("application/json"), (
            f"{method} {path}: {status} {content_type}\n{text[-2000:]}" + self.journal()
        )
        return json.loads(text)

    def active(self, *units):
        return self.sh("systemctl", "is-active", *units).stdout.split()

    def poweroff(self):
        if self.nspawn is None:
            return
        if self.nspawn.poll() is None and self.pid:
            self.sh("systemctl", "poweroff", timeout=30)
        elif self.nspawn.poll() is None:
            self.nspawn.terminate()  # nspawn asks the container's init to power off
        try:
            self.nspawn.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(self.nspawn.pid, signal.SIGKILL)
            self.nspawn.wait(30)


@pytest.fixture(scope="module")
def container():
    base = Path(tempfile.mkdtemp(prefix="sentinel-system-", dir="/var/tmp"))
    machine = Container(base)
    try:
        wheel = build_wheel(base)
        machine.prepare(wheel)
        machine.boot()
        yield machine
    finally:
        machine.poweroff()
        shutil.rmtree(base, ignore_errors=True)


def waited(condition, timeout, what, evidence):
    """wait_for, with the evidence (read when it times out) in the failure."""
    try:
        return wait_for(condition, timeout, 0.5, what)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{evidence()}") from None


def wait_active(container, units, timeout=30):
    def evidence():
        return f"systemctl is-active: {container.active(*units)}" + container.journal(*units)

    active = ["active"] * len(units)
    return waited(
        lambda: container.active(*units) == active, timeout, f"{' and '.join(units)}", evidence
    )


@pytest.fixture(scope="module")
def alice(container):
    """A user made with the command as docs/install.md says, signed in over HTTPS."""
    created = container.sh(
        *("runuser", "-u", "postgres", "--", "env", "SENTINEL_CONFIG=/etc/sentinel/sentinel.conf"),
        *("SENTINEL_STATE_DIR=/var/lib/sentinel", "/opt/sentinel/bin/sentinel"),
        *("users", "create", "alice", "--password-stdin"),
        input=ALICE_PASSWORD + "\n",
    )
    assert created.returncode == 0, output_of(created) + container.journal()
    answer = container.api("POST", "/login", body={"username": "alice", "password": ALICE_PASSWORD})
    assert answer.get("session"), answer
    return answer["session"]


# -- the checks, in the order a DBA would go ---------------------------------------------------


def test_both_units_run_and_answer_over_https_as_the_cluster_owner(container):
    enabled = container.sh("systemctl", "is-enabled", *UNITS).stdout.split()
    assert enabled == ["enabled", "enabled"], enabled
    wait_active(container, UNITS)
    status, content_type, text = waited(
        lambda: (answer := container.https("GET", "/status"))[0] == 200 and answer,
        30,
        "GET https://127.0.0.1:2345/status to answer 200",
        lambda: container.https("GET", "/status")[2] + container.journal(),
    )
    assert content_type.startswith("application/json"), text + container.journal()
    answer = json.loads(text)
    assert answer["user"] == "postgres", answer
    assert answer["configfile"] == "/etc/sentinel/sentinel.conf", answer
    # The state directory systemd made: 0700, the service user's.
    mode = container.sh("stat", "-c", "%a %U", "/var/lib/sentinel").stdout.split()
    assert mode == ["700", "postgres"], mode


def test_a_user_made_with_the_command_signs_in(container, alice):
    # The docs' plain form (no variables) reads the same configuration and state.
    listed = container.sh(
        *("runuser", "-u", "postgres", "--", "/opt/sentinel/bin/sentinel", "users", "list")
    )
    assert listed.stdout.startswith("alice\t"), output_of(listed)
    status, _, text = container.https("GET", "/dashboard/history", session=alice)
    assert status == 200, f"{status} {text[-2000:]}" + container.journal()
    wrong = {"username": "alice", "password": "not-" + ALICE_PASSWORD}
    status, _, text = container.https("POST", "/login", body=wrong)
    # The temBoard agent's answer to wrong credentials (the route's description).
    assert status == 404 and json.loads(text) == {"error": "Invalid username/password."}, (
        f"{status} {text}" + container.journal()
    )


def test_nginx_hands_sentinel_the_client_address_and_the_agent_headers(container):
    # Sentinel itself listens on loopback only, in plain HTTP.
    listening = container.sh("ss", "-Htln", "sport = :2344").stdout.split()
    assert "127.0.0.1:2344" in listening, listening
    # A client on another address, naming yet another in X-Forwarded-For: the
    # failed sign-in (throttled per address) is counted against its own.
    status, _, text = container.https(
        "POST",
        "/login",
        body={"username": "mallory", "password": "not-a-password"},
        headers=["X-Forwarded-For: 203.0.113.9"],
        source="127.0.0.2",
    )
    assert status == 404, f"{status} {text}" + container.journal()
    waited(
        lambda: (
            "event=login_failed username=mallory address=127.0.0.2" in container.journal("sentinel")
        ),
        10,
        "the failed sign-in from 127.0.0.2 in the journal",
        container.journal,
    )
    # The temBoard UI's agent key passes through, as X-Session does.
    key = f"X-TemBoard-Agent-Key: {AGENT_KEY}"
    status, _, text = container.https("GET", "/notifications", headers=[key])
    assert status == 200, f"{status} {text}" + container.journal()
    wrong = "X-TemBoard-Agent-Key: not-the-key"
    assert container.https("GET", "/notifications", headers=[wrong])[0] == 401


# Run inside the container with Debian's python3: slow clients on nginx's
# port, then /status through nginx while they stay connected.
SLOW_CLIENTS = r"""
import json, socket, ssl, sys, time, urllib.request

context = ssl.create_default_context(cafile=sys.argv[1])
url = "https://127.0.0.1:2345/status"


def connect(first_bytes):
    client = socket.create_connection(("127.0.0.1", 2345), timeout=10)
    client = context.wrap_socket(client, server_hostname="127.0.0.1")
    client.sendall(first_bytes)
    return client


def waiting(client):
    client.setblocking(False)
    try:
        client.recv(1)
    except ssl.SSLWantReadError:
        return True
    except OSError:
        pass
    return False


headers = b"GET /status HTTP/1.1\r\nHost: sentinel\r\n"
body = b"POST /login HTTP/1.1\r\nHost: sentinel\r\nContent-Length: 60\r\n\r\n{"
slow = [connect(headers) for _ in range(200)] + [connect(body) for _ in range(100)]
opened = time.monotonic()
took = []
for _ in range(10):
    started = time.monotonic()
    with urllib.request.urlopen(url, timeout=10, context=context) as answer:
        assert answer.status == 200 and json.load(answer)["version"]
    took.append(round((time.monotonic() - started) * 1000, 1))
checked_after = time.monotonic() - opened
still_waiting = sum(waiting(client) for client in slow)
time.sleep(max(opened + 15 - time.monotonic(), 0))
print(json.dumps({
    "slow": len(slow),
    "status_ms": took,
    "checked_after": round(checked_after, 1),
    "still_waiting": still_waiting,
    "waiting_after_15_s": sum(waiting(client) for client in slow),
}))
"""


def test_slow_clients_wait_in_nginx_and_status_answers_within_a_second(container):
    (container.root / "root" / "slow_clients.py").write_text(SLOW_CLIENTS)
    result = container.sh("python3", "/root/slow_clients.py", CERT, timeout=120)
    assert result.returncode == 0, output_of(result) + container.journal()
    measured = json.loads(result.stdout)
    print(f"nginx, {measured['slow']} slow clients: /status in {measured['status_ms']} ms")
    assert max(measured["status_ms"]) < 1000, measured
    # They were all still connected while /status answered...
    assert measured["still_waiting"] == measured["slow"], measured
    # ...and nginx dropped every one of them at its 10 s timeouts.
    assert measured["waiting_after_15_s"] == 0, measured
    journal = container.journal("sentinel")
    assert "client_timed_out" not in journal and "Traceback" not in journal, journal


def test_the_worker_collects_dashboard_samples(container, alice):
    def history():
        return container.api("GET", "/dashboard/history", session=alice)

    first = waited(history, 20, "a dashboard sample", container.journal)
    second = waited(
        lambda: (later := history())[-1]["timestamp"] > first[-1]["timestamp"] and later,
        10,
        "the dashboard history to gain a sample",
        container.journal,
    )
    assert len(second) > len(first) or len(first) == 150, (len(first), len(second))


def test_the_worker_collects_monitoring_runs(container, alice):
    def runs():
        return container.api("GET", "/monitoring/history?start=2000-01-01T00:00:00Z", session=alice)

    collected = waited(runs, 40, "a monitoring run", container.journal)
    data = collected[-1]["data"]
    probes = {"sessions", "xacts", "locks", "cpu", "memory", "loadavg", "db_size", "wal_files"}
    assert probes <= set(data), f"probes: {sorted(data)}" + container.journal()
    # A probe the hardening breaks (netlink, /proc, ...) is logged, not stored.
    journal = container.journal("sentinel-worker")
    assert "event=probe_failed" not in journal, journal


def test_the_templated_instance_runs_beside_the_plain_one(container):
    enabled = container.sh("systemctl", "is-enabled", *MAIN_UNITS).stdout.split()
    assert enabled == ["enabled", "enabled"], enabled
    wait_active(container, MAIN_UNITS)
    waited(
        lambda: container.https("GET", "/status", port=2346, cert=MAIN_CERT)[0] == 200,
        30,
        "GET https://127.0.0.1:2346/status to answer 200",
        lambda: (
            container.https("GET", "/status", port=2346, cert=MAIN_CERT)[2]
            + container.journal(*MAIN_UNITS)
        ),
    )
    # Its own user, made as the docs say, signs in on its own port only.
    created = container.sh(
        *("runuser", "-u", "postgres", "--", "env", "SENTINEL_CONFIG=/etc/sentinel/main.conf"),
        *("SENTINEL_STATE_DIR=/var/lib/sentinel/main", "/opt/sentinel/bin/sentinel"),
        *("users", "create", "bob", "--password-stdin"),
        input=ALICE_PASSWORD + "\n",
    )
    assert created.returncode == 0, output_of(created) + container.journal(*MAIN_UNITS)
    bob = {"username": "bob", "password": ALICE_PASSWORD}
    answer = container.api("POST", "/login", port=2346, cert=MAIN_CERT, body=bob)
    assert answer.get("session"), answer
    status, _, text = container.https("POST", "/login", body=bob)
    assert status == 404, f"bob signed in on the plain instance: {status} {text}"


def test_systemd_analyze_security_rates_the_unit(container):
    result = container.sh("systemd-analyze", "security", "--no-pager", "sentinel.service")
    exposure = [line for line in result.stdout.splitlines() if "Overall exposure" in line]
    assert result.returncode == 0 and exposure, output_of(result)


def postmaster(container):
    result = container.sh("head", "-1", "/var/lib/postgresql/15/main/postmaster.pid")
    return result.stdout.strip() if result.returncode == 0 else None


def test_a_restart_through_the_api_keeps_postgresql_in_its_own_unit(container, alice):
    before = waited(lambda: postmaster(container), 10, "postmaster.pid", container.journal)
    answer = container.api(
        "POST", "/administration/control", session=alice, body={"action": "restart"}
    )
    assert answer == {"action": "restart", "state": "ok"}, answer
    assert container.active(PG_UNIT) == ["active"], container.journal(PG_UNIT, *UNITS)
    after = waited(
        lambda: postmaster(container), 10, "postmaster.pid after the restart", container.journal
    )
    assert after != before, f"the postmaster is still {before}: not restarted"
    cgroup = container.sh("cat", f"/proc/{after}/cgroup").stdout
    assert f"/{PG_UNIT}" in cgroup and "sentinel" not in cgroup, cgroup + container.journal()


def test_stopping_sentinel_leaves_postgresql_running(container):
    # Last: the plain units stay stopped.
    result = container.sh("systemctl", "stop", *UNITS, timeout=120)
    assert result.returncode == 0, output_of(result) + container.journal()
    assert container.active(*UNITS) == ["inactive", "inactive"], container.journal()
    assert container.active(PG_UNIT) == ["active"], container.journal(PG_UNIT, *UNITS)
    select = container.sh("runuser", "-u", "postgres", "--", "psql", "-Atc", "select 1")
    assert select.stdout.strip() == "1", output_of(select) + container.journal()
