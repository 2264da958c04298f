"""What Sentinel writes is for its OS user alone: state, keys, passwords and
logs 0600, their directories 0700, whatever the umask it was started with."""

import configparser
import contextlib
import json
import os
import pwd
import shutil
import ssl
import stat
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

import pytest
from test_make_run import DevServer

from sentinel import state
from sentinel.dev import sandbox
from sentinel.state import User

ROOT = Path(__file__).resolve().parent.parent
UNITS = sorted((ROOT / "systemd").glob("*.service"))


def mode(path):
    return stat.S_IMODE(path.lstat().st_mode)


def loose(directory, skip=()):
    """Files and directories under `directory` that others than the owner may
    use, as {path: mode}. Sockets are left out: their directory guards them."""
    found = {}
    for path in directory.rglob("*"):
        kind = path.lstat().st_mode
        if path in skip or not (stat.S_ISDIR(kind) or stat.S_ISREG(kind)):
            continue
        if mode(path) != (0o700 if stat.S_ISDIR(kind) else 0o600):
            found[str(path)] = oct(mode(path))
    return found


@pytest.fixture
def usual_umask():
    """The umask most shells give: files 0644 unless their maker says otherwise."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


@contextlib.contextmanager
def using_state(url, state_dir):
    db = state.bind(url)
    try:
        state.migrate(db, state_dir)
        with db.connection_context():
            User.create(username="alice", password_hash="x")  # the WAL gets a frame
            yield db
    finally:
        db.close_all()


def test_the_state_database_and_its_lock_are_private(tmp_path, usual_umask):
    state_dir = tmp_path / "state"
    with using_state(f"sqlite:///{state_dir / 'sentinel.db'}", state_dir):
        names = sorted(path.name for path in state_dir.iterdir())
        assert names == ["migrate.lock", "sentinel.db", "sentinel.db-shm", "sentinel.db-wal"]
        assert loose(tmp_path) == {}


def test_a_state_database_readable_before_is_closed_up(tmp_path, usual_umask):
    state_dir = tmp_path / "state"
    state_dir.mkdir(mode=0o700)
    for name in ("sentinel.db", "sentinel.db-wal", "sentinel.db-shm"):
        (state_dir / name).touch(mode=0o644)
    with using_state(f"sqlite:///{state_dir / 'sentinel.db'}", state_dir):
        assert loose(tmp_path) == {}


@pytest.mark.parametrize("unit", UNITS, ids=lambda path: path.name)
def test_the_units_start_sentinel_with_a_private_umask(unit):
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str
    parser.read(unit)
    assert parser["Service"]["UMask"] == "0077"
    assert parser["Service"]["StateDirectoryMode"] == "0700"


# -- make run ---------------------------------------------------------------------------


@pytest.fixture
def state_dir():
    path = Path(tempfile.mkdtemp(prefix="sentinel-modes-", dir="/tmp"))
    os.chmod(path, 0o755)  # as a checkout's var/ often is
    yield path
    sandbox.Cluster(path / "sandbox").stop("immediate")
    shutil.rmtree(path, ignore_errors=True)


def sign_in(port, certificate, username, password):
    """Sign in over HTTPS: the state database gets written."""
    call = urllib.request.Request(
        f"https://127.0.0.1:{port}/login",
        data=json.dumps({"username": username, "password": password}).encode(),
        headers={"Content-Type": "application/json"},
    )
    context = ssl.create_default_context(cafile=str(certificate))
    with urllib.request.urlopen(call, timeout=10, context=context) as answer:
        return answer.status


def test_make_run_leaves_nothing_another_user_may_read(state_dir, usual_umask):
    port = sandbox.free_port()
    env = {
        **os.environ,
        "SENTINEL_STATE_DIR": str(state_dir),
        "SENTINEL_BIND": f"127.0.0.1:{port}",
        "SENTINEL_TLS": "self-signed",  # a key and a certificate
        # Sentinel's own Redis there, behind a password kept in its directory.
        "SENTINEL_REDIS_URL": f"redis://127.0.0.1:{sandbox.free_port()}/0",
    }
    run = DevServer(env)
    try:
        run.wait_for("press Ctrl-C to stop")
        subprocess.run(
            [sys.executable, "-m", "sentinel", "users", "create", "bob", "--password-stdin"],
            input="bob-password",
            text=True,
            env=env,
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        assert sign_in(port, state_dir / "tls" / "cert.pem", "bob", "bob-password") == 200
        created = {path.relative_to(state_dir).as_posix() for path in state_dir.rglob("*")}
        for name in (
            "sentinel.db",
            "sentinel.db-wal",
            "sentinel.db-shm",
            "secret_key",
            "tls/key.pem",
            "tls/cert.pem",
            "redis/password",
            "redis/redis.conf",
            "redis/appendonlydir",
            "sandbox/password",
            "sandbox/postgres.log",
            "sandbox/data/PG_VERSION",
        ):
            assert name in created
        assert loose(state_dir) == {}
    finally:
        run.ctrl_c()
    assert loose(state_dir) == {}, run.text
    if os.geteuid() != 0:
        assert mode(state_dir) == 0o700
    else:
        # The sandbox cluster then belongs to another OS user: it may go
        # through the state directory to its own (by its group), not read it.
        assert mode(state_dir) == 0o710
        assert state_dir.stat().st_gid == pwd.getpwnam(sandbox.DEFAULT_OSUSER).pw_gid
