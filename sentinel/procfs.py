"""Per-process OS figures of PostgreSQL backends, read straight from /proc.

psutil costs 50-130 µs per process here, so 200 backends would take 10-25 ms
of a request; reading /proc/<pid>/stat and /proc/<pid>/io directly costs
about 20 µs. psutil stays for the host's own figures (sentinel.host).

A process that has ended, or whose entries Sentinel may not read (another OS
user's /proc/<pid>/io), gives None or zero I/O: its caller shows zeros, never
fails.
"""

import os
from typing import NamedTuple


class Reading(NamedTuple):
    """One look at a process. `start` (ticks since boot) tells one incarnation
    of a pid from the next; `state` is the one-letter process state ("D":
    uninterruptible I/O wait); `cpu` is user + system time in clock ticks."""

    start: int
    state: str
    cpu: int
    rss_pages: int
    read_bytes: int
    write_bytes: int


def _read(path):
    # os.open and os.read: a Python file object would cost as much again.
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        return os.read(fd, 4096)
    except OSError:
        return None
    finally:
        os.close(fd)


def _io_counters(io):
    """(read_bytes, write_bytes) from /proc/<pid>/io, whose lines come in a
    fixed order: rchar, wchar, syscr, syscw, read_bytes, write_bytes, ..."""
    fields = io.split() if io else []
    if len(fields) >= 12 and fields[8] == b"read_bytes:" and fields[10] == b"write_bytes:":
        return int(fields[9]), int(fields[11])
    return 0, 0


def read(pid):
    """A Reading of process `pid`, or None when it cannot be read."""
    stat = _read(f"/proc/{pid}/stat")
    if not stat:
        return None
    # The command name, in parentheses, may itself hold spaces or parentheses.
    fields = stat[stat.rindex(b")") + 2 :].split(None, 22)
    try:
        start, state = int(fields[19]), fields[0].decode()
        cpu, rss = int(fields[11]) + int(fields[12]), int(fields[21])
    except (IndexError, ValueError):
        return None
    return Reading(start, state, cpu, rss, *_io_counters(_read(f"/proc/{pid}/io")))
