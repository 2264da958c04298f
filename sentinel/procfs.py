"""Per-process OS figures of PostgreSQL backends, read straight from /proc.

psutil costs 50-130 µs per process here, so 200 backends would take 10-25 ms
of a request. Reading /proc/<pid>/stat and /proc/<pid>/io with os.open and
os.read costs about 17 µs per backend, so that is what Sentinel does; psutil
is kept for host-wide facts (total memory, CPU count: sentinel.host). Each
process (web worker) also keeps the two files of up to a few hundred backends
open between requests and re-reads them with pread(), which costs about 7 µs:
a descriptor stays bound to the process it was opened for, so a pid reused by
a new process is never read through an old descriptor.

A process that has ended, or whose entries Sentinel may not read (another OS
user's /proc/<pid>/io), gives None or zero I/O: its caller shows zeros, never
fails.
"""

import os
import resource
import threading
import time

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
# Descriptors unused this long (their backend has ended) are closed.
IDLE_DESCRIPTORS = 300


def _read(path):
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
    fields = io.split()
    if len(fields) >= 12 and fields[8] == b"read_bytes:" and fields[10] == b"write_bytes:":
        return int(fields[9]), int(fields[11])
    return 0, 0


def _parse(stat, io):
    """(start_ticks, state, cpu_ticks, rss_pages, read_bytes, write_bytes) from
    the texts of /proc/<pid>/stat and /proc/<pid>/io (None: unreadable)."""
    # The command name, in parentheses, may itself hold spaces or parentheses.
    fields = stat[stat.rindex(b")") + 2 :].split(None, 22)
    try:
        reading = (
            int(fields[19]),  # starttime
            fields[0].decode(),  # state
            int(fields[11]) + int(fields[12]),  # utime + stime
            int(fields[21]),  # rss
        )
    except (IndexError, ValueError):
        return None
    return reading + (_io_counters(io) if io else (0, 0))


def sample(pid):
    """One reading of a process: (start_ticks, state, cpu_ticks, rss_pages,
    read_bytes, write_bytes), or None when the process cannot be read.

    start_ticks (its start time since boot) tells one incarnation of a pid from
    the next; state is the one-letter process state ("D": uninterruptible I/O
    wait); I/O counters are 0 when only /proc/<pid>/io is unreadable.
    """
    stat = _read(f"/proc/{pid}/stat")
    return _parse(stat, _read(f"/proc/{pid}/io")) if stat else None


def _pread(fd):
    if fd is None:
        return None
    try:
        return os.pread(fd, 4096, 0)
    except OSError:
        return None


def _close(fds):
    for fd in fds:
        if fd is not None:
            os.close(fd)


class Reader:
    """sample() for many processes, through descriptors kept open between calls.

    At most `limit` processes keep theirs (two each), by default a quarter of
    the process's file descriptor limit; any others are read as sample() does.
    """

    def __init__(self, limit=None):
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        self.limit = limit if limit is not None else max(0, min(soft // 4, 1024))
        self._open = {}  # pid -> [stat fd, io fd or None, last use]
        self._latest = []  # see remember()
        self._lock = threading.Lock()
        self._owner = os.getpid()

    def _fds(self, pid):
        try:
            stat_fd = os.open(f"/proc/{pid}/stat", os.O_RDONLY)
        except OSError:
            return None
        try:
            io_fd = os.open(f"/proc/{pid}/io", os.O_RDONLY)
        except OSError:
            io_fd = None
        return stat_fd, io_fd

    def _sample(self, pid, now):
        entry = self._open.get(pid)
        if entry is not None:
            stat = _pread(entry[0])
            if stat:
                entry[2] = now
                return _parse(stat, _pread(entry[1]))
            # The process has ended; the pid may belong to a new one by now.
            del self._open[pid]
            _close(entry[:2])
        if len(self._open) >= self.limit:
            return sample(pid)
        fds = self._fds(pid)
        if fds is None:
            return None
        stat = _pread(fds[0])
        if not stat:
            _close(fds)
            return None
        self._open[pid] = [*fds, now]
        return _parse(stat, _pread(fds[1]))

    def remember(self, pids):
        """Note the processes a caller needed to read this time."""
        with self._lock:
            self._latest = list(pids)

    def latest(self):
        """The processes last remember()ed: those a caller is likely to need
        next time, and may read ahead."""
        with self._lock:
            return list(self._latest)

    def samples(self, pids):
        """{pid: sample or None} for every pid."""
        now = time.monotonic()
        with self._lock:
            if self._owner != os.getpid():
                # Forked: the parent's descriptors are its own business.
                self._open, self._owner = {}, os.getpid()
            readings = {pid: self._sample(pid, now) for pid in pids}
            stale = [pid for pid, entry in self._open.items() if now - entry[2] > IDLE_DESCRIPTORS]
            for pid in stale:
                _close(self._open.pop(pid)[:2])
        return readings

    def close(self):
        with self._lock:
            for entry in self._open.values():
                _close(entry[:2])
            self._open = {}


# One per process, shared by its threads: like a connection pool, it only
# keeps resources between requests and holds nothing a request depends on.
reader = Reader()
