"""Starting, stopping, restarting and reloading the managed instance.

reload is pg_reload_conf(); the others run the configured pg_ctl command
template (SENTINEL_PG_CTL) as an argument vector, never through a shell, with
`{action}` replaced by one of a fixed set of words. Control actions are
serialised on the host, so two restarts asked at once do not interleave.
"""

import contextlib
import fcntl
import logging
import shlex
import subprocess
import time
from pathlib import Path

from ...core import notifications
from ...errors import Conflict, PostgresUnavailable

logger = logging.getLogger(__name__)

ACTIONS = ("start", "stop", "restart", "reload")


def pg_version(pg):
    return pg.queryone(
        "SELECT current_setting('server_version_num')::int AS numeric, version() AS full"
    )


@contextlib.contextmanager
def _exclusive(state_dir):
    with open(Path(state_dir) / "control.lock", "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise Conflict("Another control action is running.") from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _reason(output):
    """pg_ctl's own complaints ("pg_ctl: ..."), else its last line."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    own = [line.removeprefix("pg_ctl:").strip() for line in lines if line.startswith("pg_ctl:")]
    return "; ".join(own) or (lines[-1] if lines else "")


def _run_pg_ctl(template, action, timeout):
    """None when pg_ctl succeeded, else why it did not."""
    argv = [word.replace("{action}", action) for word in shlex.split(template)]
    try:
        result = subprocess.run(
            argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout
        )
    except FileNotFoundError:
        return f"{argv[0]}: command not found"
    except subprocess.TimeoutExpired:
        return f"pg_ctl {action} did not finish within {timeout} s"
    if result.returncode != 0:
        reason = _reason(result.stderr) or _reason(result.stdout)
        return reason or f"pg_ctl {action} exited with status {result.returncode}"
    return None


def _wait_until_up(pg, deadline):
    while True:
        try:
            pg.queryscalar("SELECT 1")
            return True
        except PostgresUnavailable:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.2)


def control(action, pg, template, timeout, state_dir):
    """Carry out `action`; returns (state, reason): ("ok", None) or ("ko", why)."""
    with _exclusive(state_dir):
        if action == "reload":
            try:
                pg.queryscalar("SELECT pg_reload_conf()")
            except PostgresUnavailable as exc:
                return "ko", exc.reason
            return "ok", None
        if not template:
            return "ko", "SENTINEL_PG_CTL is not set"
        deadline = time.monotonic() + timeout
        reason = _run_pg_ctl(template, action, timeout)
        if reason:
            return "ko", reason
        if action in ("start", "restart") and not _wait_until_up(pg, deadline):
            return "ko", f"PostgreSQL did not accept connections within {timeout} s"
        return "ok", None


def perform(action, username, pg, settings):
    """Carry out `action` for `username` and record it in the notifications;
    a failure's reason goes into its notification."""
    state, reason = control(
        action, pg, settings["pg_ctl"], settings["pg_ctl_timeout"], settings["state_dir"]
    )
    if state == "ok":
        logger.info("event=control action=%s by=%s", action, username)
        notifications.record(username, f"PostgreSQL {action}")
    else:
        logger.warning("event=control_failed action=%s reason=%s", action, reason)
        notifications.record(username, f"PostgreSQL {action} failed: {reason}")
    return state, reason
