"""The monitoring probes: what each one measures, in the temBoard agent's shapes.

A probe returns a list of records (dicts). SQL probes run their own query and
nothing else, over one pooled connection, except the two bloat probes, which
must ask each database about its own tables. Host probes read sentinel.host.

Counters become increases against the previous sample kept in the shared
sample store, with the seconds between the two as `measure_interval`; with no
previous sample a record is left out, so a first call answers []. The route
and the collector keep separate samples (a Baseline), so that calls to the
route never shorten the collector's interval. A counter that went backwards,
or whose reset marker changed (stats_reset, the host's boot time), was reset:
its increase is counted from zero, i.e. it is the counter's current value.
The WAL position never resets: if it goes backwards (a rebuilt instance) the
WAL written is reported as 0.
"""

import datetime
import logging
import time
from dataclasses import dataclass
from typing import NamedTuple

from ... import host, samples
from ...errors import PostgresUnavailable
from ...postgres import sql_folder

logger = logging.getLogger(__name__)

SQL = sql_folder(__file__)

# The columns of the locks probe: one per lock mode, and waiting_<mode>.
LOCK_MODES = (
    "access_share",
    "row_share",
    "row_exclusive",
    "share_update_exclusive",
    "share",
    "share_row_exclusive",
    "exclusive",
    "access_exclusive",
)


def utc_stamp(moment=None):
    """A record's `datetime`: ISO 8601 in UTC with microseconds, as the agent."""
    moment = moment or datetime.datetime.now(datetime.UTC)
    return moment.astimezone(datetime.UTC).isoformat(timespec="microseconds")


class Baseline(NamedTuple):
    """Whose previous samples a probe measures against: those of the instance
    `identity` (SQL probes) or of the host `hostname` (host probes), kept by
    `consumer` ("api": the route, shared by every web worker; "collector")."""

    identity: str
    hostname: str
    consumer: str

    def key(self, probe, of_host=False):
        return samples.key(
            self.hostname if of_host else self.identity, "probe", probe, self.consumer
        )


# -- increases between two samples -----------------------------------------------


def increases(store, name, measures, *, resets_count_from_zero=True):
    """Put `measures` ({key: (counters, reset_marker)}) in the sample store
    under `name` in place of the previous sample, and return {key: (seconds
    since the previous sample, {counter: increase})} for the keys that had a
    previous sample.

    A counter below its previous value, or a changed reset marker, means the
    counter restarted from zero since: the increase is its current value; with
    resets_count_from_zero=False it is 0 instead.
    """
    now = time.time()
    current = {
        "at": now,
        "measures": {
            key: {"reset": reset, "values": values} for key, (values, reset) in measures.items()
        },
    }
    previous = store.swap(name, current)
    if previous is None:
        return {}
    result = {}
    for key, before in previous.get("measures", {}).items():
        if key not in current["measures"]:
            continue
        now_values, old = current["measures"][key]["values"], before.get("values", {})
        if set(old) != set(now_values):
            continue  # a sample of another shape: start afresh
        was_reset = before.get("reset") != current["measures"][key]["reset"]
        deltas = {}
        for counter, value in now_values.items():
            if not was_reset and value >= old[counter]:
                deltas[counter] = value - old[counter]
            else:
                deltas[counter] = value if resets_count_from_zero else 0
        result[key] = (now - previous["at"], deltas)
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


def jsonable(value):
    if isinstance(value, datetime.datetime):
        return utc_stamp(value)
    return value


def query(pg, name):
    """(server port, rows) of the probe query sql/<name>.sql."""

    def work(conn):
        return conn.raw.info.port, conn.query_file(SQL / f"{name}.sql")

    return pg.run(work)


@dataclass(frozen=True)
class SqlProbe:
    """A probe that is one query (sql/<name>.sql) on the pooled connection."""

    name: str
    counters: Counters | None = None
    port: bool = True  # the agent adds `port` to its per-query records

    def run(self, pg, store, baseline, collecting):
        records = self._records(pg)
        if self.counters is None or not (self.counters.always or collecting):
            return [record for record, _ in records]
        return self._increases(records, store, baseline.key(self.name))

    def _records(self, pg):
        """[(record, reset marker)] of the probe's query."""
        port, rows = query(pg, self.name)
        records = []
        for row in rows:
            record = {k: jsonable(v) for k, v in row.items() if not k.startswith("_")}
            if self.port:
                record["port"] = port
            records.append((record, jsonable(row.get("_reset"))))
        return records

    def _key_of(self, record):
        return record[self.counters.key] if self.counters.key else "instance"

    def _increases(self, records, store, name):
        measures = {
            self._key_of(record): ({c: record[c] for c in self.counters.columns}, reset)
            for record, reset in records
        }
        deltas = increases(store, name, measures)
        out = []
        for record, _ in records:
            found = deltas.get(self._key_of(record))
            if found is not None:
                interval, values = found
                out.append({**record, **values, "measure_interval": interval})
        return out


class WalFilesProbe:
    """WAL segments and archiving backlog, and the WAL written since the last sample."""

    name = "wal_files"

    def run(self, pg, store, baseline, collecting):
        port, rows = query(pg, self.name)
        row = rows[0]
        if row["_position"] is None:  # a standby: the agent reports nothing
            return []
        deltas = increases(
            store,
            baseline.key(self.name),
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

    def run(self, pg, store, baseline, collecting):
        port, rows = query(pg, "databases")
        records = []
        for row in rows:
            dbname = row["dbname"]
            try:
                found = pg.run(
                    lambda conn: conn.queryone_file(SQL / f"{self.name}.sql"), dbname=dbname
                )
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


class HostProbe:
    """A probe of the host; PostgreSQL being down does not affect it."""

    def __init__(self, name, measure):
        self.name = name
        self.measure = measure

    def run(self, pg, store, baseline, collecting):
        return self.measure(store, baseline.key(self.name, of_host=True))


def cpu(store, name):
    """CPU time spent per state since the previous sample, in ms, all CPUs together."""
    stat = host.proc_stat()
    ticks = [int(v) for v in stat["cpu"]]
    ms = 1000 / host.CLOCK_TICKS
    times = {
        "time_user": (ticks[0] + ticks[1]) * ms,  # user + nice
        "time_system": (ticks[2] + ticks[5] + ticks[6]) * ms,  # system + irq + softirq
        "time_idle": ticks[3] * ms,
        "time_iowait": ticks[4] * ms,
        "time_steal": ticks[7] * ms,
    }
    boot = int(stat["btime"][0])
    deltas = increases(store, name, {"global": (times, boot)})
    if "global" not in deltas:
        return []
    interval, values = deltas["global"]
    return [{**values, "measure_interval": interval, "cpu": "global"}]


def process(store, name):
    """Processes running and blocked now, and forks and context switches since
    the previous sample."""
    stat = host.proc_stat()
    total = host.loadavg()[3].partition("/")[2]
    counters = {"context_switches": int(stat["ctxt"][0]), "forks": int(stat["processes"][0])}
    boot = int(stat["btime"][0])
    deltas = increases(store, name, {"host": (counters, boot)})
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


def memory(store, name):
    info = host.meminfo()
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


def loadavg(store, name):
    load1, load5, load15 = host.loadavg()[:3]
    return [{"load1": load1, "load5": load5, "load15": load15}]


def filesystems_size(store, name):
    return host.file_systems()


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
