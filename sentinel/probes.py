"""The monitoring probes: what each one measures, in the temBoard agent's shapes.

A probe returns a list of records (dicts). SQL probes run their own query and
nothing else, over one pooled connection, except the two bloat probes, which
must ask each database about its own tables. Host probes read /proc and the
mounted file systems.

Counters become increases against the previous sample kept in the shared
sample store (namespace "probe:<name>"), with the seconds between the two as
`measure_interval`; with no previous sample a record is left out, so a first
call answers []. A counter that went backwards, or whose reset marker changed
(stats_reset, the host's boot time), was reset: its increase is counted from
zero, i.e. it is the counter's current value. The WAL position never resets:
if it goes backwards (a rebuilt instance) the WAL written is reported as 0.
"""

import datetime
import logging
import os
import time
from dataclasses import dataclass

import psutil

from .errors import PostgresUnavailable

logger = logging.getLogger(__name__)

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

# Devices and top-level directories the agent leaves out of filesystems_size.
SKIPPED_DEVICES = ("devtmpfs", "overlay", "shm", "tmpfs")
SKIPPED_TOP_DIRECTORIES = ("dev", "proc", "run", "sys")
# Not local storage: statvfs on a dead network mount could hang.
REMOTE_FSTYPES = frozenset(
    ("nfs", "nfs4", "cifs", "smbfs", "smb3", "ncpfs", "afs", "ceph", "glusterfs", "9p", "lustre")
)


def utc_stamp(moment=None):
    """A record's `datetime`: ISO 8601 in UTC with microseconds, as the agent."""
    moment = moment or datetime.datetime.now(datetime.UTC)
    return moment.astimezone(datetime.UTC).isoformat(timespec="microseconds")


# -- increases between two samples -----------------------------------------------


def increases(pending, measures, *, resets_count_from_zero=True):
    """Put `measures` ({key: (counters, reset_marker)}) in the sample store in
    place of the previous sample `pending` fetched (samples.fetch, sent before
    the measure was taken so the round trip overlaps it; a sample this process
    stored under a second ago stays instead), and return {key:
    (seconds since the previous sample, {counter: increase})} for the keys
    that had a previous sample.

    A counter below its previous value, or a changed reset marker, means the
    counter restarted from zero since: the increase is its current value; with
    resets_count_from_zero=False it is 0 instead.
    """
    now = time.time()
    current = {
        key: {"t": now, "reset": reset, "values": values}
        for key, (values, reset) in measures.items()
    }
    previous = pending.result()
    pending.renew(current)
    result = {}
    for key, before in previous.items():
        if key not in current:
            continue
        values, old = current[key]["values"], before.get("values", {})
        if set(old) != set(values):
            continue  # a sample of another shape: start afresh
        was_reset = before.get("reset") != current[key]["reset"]
        deltas = {}
        for name, value in values.items():
            if not was_reset and value >= old[name]:
                deltas[name] = value - old[name]
            else:
                deltas[name] = value if resets_count_from_zero else 0
        result[key] = (now - before["t"], deltas)
    return result


# -- SQL probes ------------------------------------------------------------------


@dataclass(frozen=True)
class Counters:
    """Columns of a SQL probe turned into increases.

    `always`: on the API route too; otherwise only in the collector's runs (the
    agent serves those probes' raw counters on its route). `key`: the column
    that tells the records of a multi-row probe apart.
    """

    columns: tuple
    always: bool = False
    key: str | None = None


@dataclass(frozen=True)
class SqlProbe:
    """A probe that is one query (sql/probe_<name>.sql) on the pooled connection."""

    name: str
    counters: Counters | None = None
    port: bool = True  # the agent adds `port` to its per-query records

    def run(self, pg, samples, collecting):
        if self.counters is None or not (self.counters.always or collecting):
            return [record for record, _ in self._records(pg)]
        with samples.fetch(f"probe:{self.name}") as pending:
            return self._increases(self._records(pg), pending)

    def _records(self, pg):
        """[(record, reset marker)] of the probe's query."""
        port, rows = query(pg, f"probe_{self.name}")
        records = []
        for row in rows:
            record = {k: jsonable(v) for k, v in row.items() if not k.startswith("_")}
            if self.port:
                record["port"] = port
            records.append((record, jsonable(row.get("_reset"))))
        return records

    def _increases(self, records, pending):
        key_of = (lambda r: r[self.counters.key]) if self.counters.key else (lambda r: "instance")
        measures = {
            key_of(record): ({c: record[c] for c in self.counters.columns}, reset)
            for record, reset in records
        }
        deltas = increases(pending, measures)
        out = []
        for record, _ in records:
            found = deltas.get(key_of(record))
            if found is None:
                continue
            interval, values = found
            out.append({**record, **values, "measure_interval": interval})
        return out


def query(pg, sql_name):
    """(server port, rows) of one named query, in one round trip."""

    def work(conn):
        return conn.raw.info.port, conn.named(sql_name)

    return pg.run(work)


def jsonable(value):
    if isinstance(value, datetime.datetime):
        return utc_stamp(value)
    return value


class WalFilesProbe:
    """WAL segments and archiving backlog, and the WAL written since the last sample."""

    name = "wal_files"

    def run(self, pg, samples, collecting):
        with samples.fetch(f"probe:{self.name}") as pending:
            port, rows = query(pg, "probe_wal_files")
            row = rows[0]
            if row["_position"] is None:  # a standby: the agent reports nothing
                return []
            deltas = increases(
                pending,
                {"instance": ({"written_size": row["_position"]}, None)},
                resets_count_from_zero=False,
            )
        if "instance" not in deltas:
            return []
        interval, values = deltas["instance"]
        return [
            {
                "port": port,
                "total": row["total"],
                "total_size": row["total_size"],
                "current_location": row["current_location"],
                "archive_ready": row["archive_ready"],
                "measure_interval": interval,
                "written_size": values["written_size"],
            }
        ]


class BloatProbe:
    """An estimate per database, which only a connection to that database can give."""

    def __init__(self, name):
        self.name = name

    def run(self, pg, samples, collecting):
        port, rows = query(pg, "probe_databases")
        records = []
        for row in rows:
            dbname = row["dbname"]
            try:
                with pg.other_database(dbname) as conn:
                    found = conn.queryone(conn.sql(f"probe_{self.name}"))
            except PostgresUnavailable as exc:
                # Dropped since it was listed, or closed to us: the others still count.
                logger.warning(
                    "event=probe_database_skipped probe=%s dbname=%s error=%s",
                    self.name,
                    dbname,
                    exc.reason,
                )
                continue
            records.append({"dbname": found["dbname"], "ratio": found["ratio"], "port": port})
        return records


# -- host probes -----------------------------------------------------------------


def read_proc_stat():
    """The lines of /proc/stat as {first word: [the other words]}."""
    with open("/proc/stat") as handle:
        return {words[0]: words[1:] for words in map(str.split, handle) if words}


def read_meminfo():
    """/proc/meminfo in bytes: {field: bytes}."""
    values = {}
    with open("/proc/meminfo") as handle:
        for line in handle:
            name, _, rest = line.partition(":")
            words = rest.split()
            if words:
                factor = 1024 if len(words) > 1 and words[1] == "kB" else 1
                values[name] = int(words[0]) * factor
    return values


def read_loadavg():
    with open("/proc/loadavg") as handle:
        return handle.read().split()


class HostProbe:
    """A probe of the host; PostgreSQL being down does not affect it."""

    def __init__(self, name, measure):
        self.name = name
        self.measure = measure

    def run(self, pg, samples, collecting):
        return self.measure(samples)


def cpu(samples):
    """CPU time spent per state since the previous sample, in ms, all CPUs together."""
    with samples.fetch("probe:cpu") as pending:  # on its way while /proc is read
        stat = read_proc_stat()
        ticks = [int(v) for v in stat["cpu"]]
        ms = 1000 / CLOCK_TICKS
        times = {
            "time_user": (ticks[0] + ticks[1]) * ms,  # user + nice
            "time_system": (ticks[2] + ticks[5] + ticks[6]) * ms,  # system + irq + softirq
            "time_idle": ticks[3] * ms,
            "time_iowait": ticks[4] * ms,
            "time_steal": ticks[7] * ms,
        }
        boot = int(stat["btime"][0])
        deltas = increases(pending, {"global": (times, boot)})
    if "global" not in deltas:
        return []
    interval, values = deltas["global"]
    return [{**values, "measure_interval": interval, "cpu": "global"}]


def process(samples):
    """Processes running and blocked now, and forks and context switches since
    the previous sample."""
    with samples.fetch("probe:process") as pending:
        stat = read_proc_stat()
        total = read_loadavg()[3].partition("/")[2]
        counters = {"context_switches": int(stat["ctxt"][0]), "forks": int(stat["processes"][0])}
        boot = int(stat["btime"][0])
        deltas = increases(pending, {"host": (counters, boot)})
    if "host" not in deltas:
        return []
    interval, values = deltas["host"]
    return [
        {
            "procs_running": int(stat["procs_running"][0]),
            "procs_blocked": int(stat["procs_blocked"][0]),
            "procs_total": total,
            "measure_interval": interval,
            "context_switches": values["context_switches"],
            "forks": values["forks"],
        }
    ]


def memory(samples):
    info = read_meminfo()
    return [
        {
            "mem_total": info["MemTotal"],
            "mem_used": info["MemTotal"] - info["MemFree"],
            "mem_free": info["MemFree"],
            "mem_buffers": info.get("Buffers", 0),
            "mem_cached": info.get("Cached", 0),
            "swap_total": info.get("SwapTotal", 0),
            "swap_used": info.get("SwapTotal", 0) - info.get("SwapFree", 0),
        }
    ]


def loadavg(samples):
    load1, load5, load15 = read_loadavg()[:3]
    return [{"load1": load1, "load5": load5, "load15": load15}]


def file_systems():
    """Local file systems with their size and use in bytes, as `df --local`
    lists them, without the pseudo and virtual ones the agent leaves out."""
    found = {}
    for part in psutil.disk_partitions(all=True):
        device, mount_point = part.device, part.mountpoint
        top = mount_point.split("/")[1] if mount_point.count("/") else ""
        if (
            part.fstype in REMOTE_FSTYPES
            or part.fstype.startswith("fuse.sshfs")
            or device in ("rootfs", *SKIPPED_DEVICES)
            or device.startswith("/dev/loop")
            or top in SKIPPED_TOP_DIRECTORIES
        ):
            continue
        try:
            usage = os.statvfs(mount_point)
        except OSError:
            continue
        if usage.f_blocks == 0:  # a pseudo file system
            continue
        # The last mount on a path hides the earlier ones.
        found[mount_point] = {
            "mount_point": mount_point,
            "device": device,
            "total": usage.f_blocks * usage.f_frsize,
            "used": (usage.f_blocks - usage.f_bfree) * usage.f_frsize,
        }
    return list(found.values())


def filesystems_size(samples):
    return file_systems()


# -- the catalogue ---------------------------------------------------------------

DB_COUNTERS = {
    "xacts": ("n_commit", "n_rollback"),
    "blocks": ("blks_read", "blks_hit"),
}
BGWRITER_COUNTERS = (
    "checkpoints_timed",
    "checkpoints_req",
    "checkpoint_write_time",
    "checkpoint_sync_time",
    "buffers_checkpoint",
    "buffers_clean",
    "maxwritten_clean",
    "buffers_backend",
    "buffers_backend_fsync",
    "buffers_alloc",
)

# In the order of the agent's collector output.
CATALOGUE = {
    probe.name: probe
    for probe in (
        SqlProbe("sessions"),
        SqlProbe("xacts", Counters(DB_COUNTERS["xacts"], key="dbname")),
        SqlProbe("locks"),
        SqlProbe("blocks", Counters(DB_COUNTERS["blocks"], key="dbname")),
        SqlProbe("bgwriter", Counters(BGWRITER_COUNTERS)),
        SqlProbe("db_size"),
        SqlProbe("tblspc_size"),
        HostProbe("filesystems_size", filesystems_size),
        HostProbe("cpu", cpu),
        HostProbe("process", process),
        HostProbe("memory", memory),
        HostProbe("loadavg", loadavg),
        WalFilesProbe(),
        SqlProbe("replication_lag", port=False),
        SqlProbe("temp_files_size_delta", Counters(("size",), always=True, key="dbname")),
        SqlProbe("replication_connection", port=False),
        BloatProbe("heap_bloat"),
        BloatProbe("btree_bloat"),
    )
}
NAMES = tuple(CATALOGUE)
HOST_PROBES = frozenset(name for name, p in CATALOGUE.items() if isinstance(p, HostProbe))
