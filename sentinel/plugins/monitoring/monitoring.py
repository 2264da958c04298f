"""Monitoring: probes on request, the periodic collector run and its history,
and the history turned into chart series for the Monitoring page."""

import datetime
import getpass
import json
import logging
import os
import pwd
from dataclasses import dataclass, field

import peewee
import psycopg2.extensions
import redis

from ... import host, state
from ...errors import Malformed, PostgresUnavailable, SentinelError
from ...state import MonitoringRun
from ...version import __version__
from . import probes

logger = logging.getLogger(__name__)

INSTANCE_NAME = "main"  # the agent's default [postgresql] instance name
HISTORY_LIMIT = 50  # the agent's default page of /monitoring/history
MAX_LIMIT = 1_000_000
START_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
RUN_SLACK = 10  # runs kept beyond retention / interval (late or manual runs)


def baseline(pg, settings, consumer):
    return probes.Baseline(pg.identity(settings["hostname"]), settings["hostname"], consumer)


def run_probe(name, pg, store, settings):
    """The records of one probe, as GET /monitoring/probe/<name> serves them."""
    probe = probes.CATALOGUE[name]
    stamp = probes.utc_stamp()
    records = probe.run(pg, store, baseline(pg, settings, "api"), collecting=False)
    return [{**record, "datetime": stamp} for record in records]


def config(settings):
    return {"dbnames": ["*"], "scheduler_interval": settings["monitoring_interval"]}


# -- the collector -------------------------------------------------------------------


def collect(pg, store, settings):
    """One run of every probe, in the agent's collector output shape.

    Counters are increases since the previous run (with measure_interval).
    When PostgreSQL cannot be reached the SQL probes are left out and the
    instance is marked unavailable; the host probes are measured all the same.
    """
    started = datetime.datetime.now(datetime.UTC)
    stamp = probes.utc_stamp(started)
    instance = instance_info(pg, settings)
    collector = baseline(pg, settings, "collector")
    data = {}
    for name, probe in probes.CATALOGUE.items():
        if name not in probes.HOST_PROBES and not instance["available"]:
            continue
        try:
            records = probe.run(pg, store, collector, collecting=True)
        except PostgresUnavailable as exc:
            logger.warning("event=probe_failed probe=%s error=%s", name, exc.message)
            instance["available"] = False  # don't wait on a dead server once per probe
            continue
        except SentinelError as exc:
            logger.warning("event=probe_failed probe=%s error=%s", name, exc.message)
            continue
        except redis.RedisError:
            raise  # no run without its sample store: the worker says Redis is down
        except Exception:
            # One broken probe (a permission, an unexpected server) must not
            # cost the run the others' measures.
            logger.exception("event=probe_failed probe=%s", name)
            continue
        data[name] = [{**record, "datetime": stamp} for record in records]
    _add_sizes(instance, data)
    return {
        "datetime": started.strftime("%Y-%m-%d %H:%M:%S +0000"),
        "hostinfo": host_info(settings),
        "instances": [instance],
        "data": data,
        "version": __version__,
    }


def collect_and_store(pg, store, settings):
    """Run every probe once and keep the run for `monitoring_retention` seconds."""
    output = collect(pg, store, settings)
    collected_at = datetime.datetime.strptime(output["datetime"], "%Y-%m-%d %H:%M:%S +0000")
    with state.database.atomic():
        MonitoringRun.create(
            collected_at=collected_at, data=json.dumps(output, separators=(",", ":"))
        )
        removed = trim(settings)
    logger.debug(
        "event=monitoring_collected probes=%s removed_runs=%s", len(output["data"]), removed
    )
    return output


def trim(settings):
    """Drop the runs older than the retention, and all but the newest
    retention / interval (+ slack) runs; returns how many went."""
    cutoff = state.utcnow() - datetime.timedelta(seconds=settings["monitoring_retention"])
    removed = MonitoringRun.delete().where(MonitoringRun.collected_at < cutoff).execute()
    cap = settings["monitoring_retention"] // settings["monitoring_interval"] + RUN_SLACK
    newest = (
        MonitoringRun.select(MonitoringRun.id)
        .order_by(MonitoringRun.collected_at.desc(), MonitoringRun.id.desc())
        .limit(cap)
    )
    removed += MonitoringRun.delete().where(MonitoringRun.id.not_in(newest)).execute()
    return removed


def _connection_facts(pg):
    """Where Sentinel connects, from its DSN (never the password), with libpq's defaults."""
    params = psycopg2.extensions.parse_dsn(pg.dsn)
    user = params.get("user") or getpass.getuser()
    return {
        "host": params.get("host") or params.get("hostaddr") or "localhost",
        "port": int(params.get("port") or 5432),
        "user": user,
        "database": params.get("dbname") or user,
    }


def instance_info(pg, settings):
    """The run's "instances" entry; `available` is False when PostgreSQL is down."""
    info = {
        "hostname": settings["hostname"],
        "instance": INSTANCE_NAME,
        "local_name": INSTANCE_NAME,
        "available": True,
        **_connection_facts(pg),
    }
    try:
        row = pg.run(lambda conn: conn.queryone_file(probes.SQL / "instance.sql"))
    except SentinelError as exc:
        # The dashboard collector says when PostgreSQL goes away and comes back.
        logger.debug("event=instance_unavailable error=%s", exc.message)
        info["available"] = False
        return info
    data_directory = row["data_directory"] or settings["pg_data"] or None
    info.update(
        version_num=row["version_num"],
        version=row["version"],
        data_directory=data_directory,
        standby=row["standby"],
        max_connections=row["max_connections"],
        tablespaces=[
            {
                "spcname": space["spcname"],
                "path": space["location"] or data_directory,
                "mount_point": host.mount_point(space["location"] or data_directory),
                "size": None,
            }
            for space in row["tablespaces"] or []
        ],
        dbnames=[{**db, "size": None} for db in row["dbnames"] or []],
        sysuser=_owner(data_directory),
    )
    return info


def _add_sizes(instance, data):
    sizes = {r["dbname"]: r["size"] for r in data.get("db_size", [])}
    for db in instance.get("dbnames", []):
        db["size"] = sizes.get(db["dbname"])
    sizes = {r["spcname"]: r["size"] for r in data.get("tblspc_size", [])}
    for space in instance.get("tablespaces", []):
        space["size"] = sizes.get(space["spcname"])


def _owner(path):
    try:
        return pwd.getpwuid(os.stat(path).st_uid).pw_name
    except (OSError, KeyError, TypeError):
        return None


CPU_KEYS = ("processor", "model_name", "cpu_mhz", "cache_size", "core_id")


def host_info(settings):
    """The run's "hostinfo", in the agent's key order."""
    facts = host.static_facts()
    cpus = [{key: cpu[key] for key in CPU_KEYS if key in cpu} for cpu in host.cpuinfo()]
    return {
        "hostname": settings["hostname"],
        "os": facts["os"],
        "os_version": facts["os_version"],
        "cpu_arch": facts["cpu_arch"],
        "cpus": cpus,
        "cpu_count": len(cpus) or facts["cpu"],
        "memory_size": facts["memory_size"],
        "ip_addresses": host.ip_addresses(),
        "filesystems": host.file_systems(),
        "os_flavor": host.os_flavor(),
    }


# -- history -------------------------------------------------------------------------


def parse_start(start):
    """/monitoring/history's `start` (YYYY-MM-DDTHH:MM:SSZ, already of that
    form) as naive UTC, or Malformed when it names no moment (a 31st of June)."""
    if start is None:
        return None
    try:
        return datetime.datetime.strptime(start, START_FORMAT)
    except ValueError:
        raise Malformed("start") from None


def history(start=None, limit=HISTORY_LIMIT):
    """The JSON texts of the kept runs collected at or after `start`, oldest
    first, at most `limit` of them (0: no limit), or without `start` the
    newest run only (as the agent)."""
    query = MonitoringRun.select(MonitoringRun.data)
    if start is None:
        query = query.order_by(MonitoringRun.collected_at.desc(), MonitoringRun.id.desc()).limit(1)
    else:
        query = query.where(MonitoringRun.collected_at >= start).order_by(
            MonitoringRun.collected_at, MonitoringRun.id
        )
        if limit:
            query = query.limit(min(limit, MAX_LIMIT))
    return [text for (text,) in query.tuples()]


# -- chart series ----------------------------------------------------------------------
# Each function turns one probe's records of a run into {series label: value};
# counters are already increases over measure_interval, so rates need one run.

MIB = 1024 * 1024


def _per_second(records, key):
    return sum(r[key] / r["measure_interval"] for r in records if r["measure_interval"] > 0)


def _rates(**columns):
    def series(records):
        return (
            {label: _per_second(records, key) for label, key in columns.items()} if records else {}
        )

    return series


def _each(name_key, value):
    def series(records):
        return {r[name_key]: value(r) for r in records}

    return series


def _single(**values):
    def series(records):
        return {label: value(records[0]) for label, value in values.items()} if records else {}

    return series


def _mib(value):
    return None if value is None else value / MIB


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


def _sessions(records):
    columns = {
        "active": "active",
        "idle": "idle",
        "idle in transaction": "idle_in_xact",
        "waiting": "waiting",
    }
    return {label: sum(r[key] for r in records) for label, key in columns.items()}


def _locks(records):
    return {
        "granted": sum(r[mode] for r in records for mode in (*LOCK_MODES, "siread")),
        "waiting": sum(r[f"waiting_{mode}"] for r in records for mode in LOCK_MODES),
    }


def _process(records):
    if not records:
        return {}
    return {
        "running": records[0]["procs_running"],
        "blocked": records[0]["procs_blocked"],
        "forks/s": _per_second(records, "forks"),
    }


def _wal_written(records):
    return {"written": _per_second(records, "written_size") / 1024} if records else {}


def _cpu(records):
    if not records:
        return {}
    record = records[0]
    states = ("user", "system", "iowait", "steal")
    total = sum(record[f"time_{state}"] for state in (*states, "idle"))
    return {state: 100 * record[f"time_{state}"] / total for state in states} if total else {}


def _memory(records):
    if not records:
        return {}
    r = records[0]
    gib = 1024 * MIB
    return {
        "used": (r["mem_used"] - r["mem_cached"] - r["mem_buffers"]) / gib,
        "cached": r["mem_cached"] / gib,
        "buffers": r["mem_buffers"] / gib,
        "free": r["mem_free"] / gib,
        "swap used": r["swap_used"] / gib,
    }


def _temp_files(record):
    return (
        record["size"] / record["measure_interval"] / 1024 if record["measure_interval"] else None
    )


@dataclass(frozen=True)
class Chart:
    """One chart of the Monitoring page: a probe's records -> {series: value}."""

    probe: str
    title: str
    unit: str
    series: object
    labels: tuple = field(default_factory=tuple)  # shown before any value exists


CHARTS = (
    Chart("sessions", "Sessions", "", _sessions, ("active", "idle", "idle in transaction")),
    Chart(
        "xacts",
        "Transactions",
        "/s",
        _rates(commits="n_commit", rollbacks="n_rollback"),
        ("commits", "rollbacks"),
    ),
    Chart("locks", "Locks", "", _locks, ("granted", "waiting")),
    Chart("blocks", "Blocks", "/s", _rates(read="blks_read", hit="blks_hit"), ("read", "hit")),
    Chart(
        "bgwriter",
        "Buffers written",
        "/s",
        _rates(
            checkpoint="buffers_checkpoint",
            **{"background writer": "buffers_clean"},
            backends="buffers_backend",
        ),
        ("checkpoint", "background writer", "backends"),
    ),
    Chart("db_size", "Database size", "MiB", _each("dbname", lambda r: _mib(r["size"]))),
    Chart("tblspc_size", "Tablespace size", "MiB", _each("spcname", lambda r: _mib(r["size"]))),
    Chart(
        "filesystems_size",
        "File systems used",
        "%",
        _each("mount_point", lambda r: 100 * r["used"] / r["total"]),
    ),
    Chart("cpu", "CPU", "%", _cpu, ("user", "system", "iowait", "steal")),
    Chart("process", "Processes", "", _process, ("running", "blocked", "forks/s")),
    Chart("memory", "Memory", "GiB", _memory, ("used", "cached", "buffers", "free")),
    Chart(
        "loadavg",
        "Load average",
        "",
        _single(
            **{key: (lambda r, key=key: float(r[key])) for key in ("load1", "load5", "load15")}
        ),
        ("load1", "load5", "load15"),
    ),
    Chart("wal_files", "WAL written", "KiB/s", _wal_written, ("written",)),
    Chart(
        "replication_lag",
        "Replication lag",
        "MiB",
        _single(lag=lambda r: _mib(r["lag"])),
        ("lag",),
    ),
    Chart(
        "temp_files_size_delta", "Temporary files written", "KiB/s", _each("dbname", _temp_files)
    ),
    Chart(
        "replication_connection",
        "Streaming from upstream",
        "",
        _single(connected=lambda r: r["connected"]),
        ("connected",),
    ),
    Chart("heap_bloat", "Table bloat (estimate)", "%", _each("dbname", lambda r: r["ratio"])),
    Chart("btree_bloat", "Index bloat (estimate)", "%", _each("dbname", lambda r: r["ratio"])),
)


def _rounded(value):
    return round(value, 3) if isinstance(value, float) else value


def chart_series(runs):
    """Charts from runs [(unix seconds, run data)], oldest first: for each of
    CHARTS {"probe", "title", "unit", "labels", "data"}, data being
    [[times...], [values of labels[0]...], ...] with None where a run has no value."""
    charts = []
    times = [moment for moment, _ in runs]
    for chart in CHARTS:
        labels = list(chart.labels)
        points = []
        for _, data in runs:
            values = chart.series(data.get(chart.probe) or [])
            labels += [label for label in values if label not in labels]
            points.append(values)
        charts.append(
            {
                "probe": chart.probe,
                "title": chart.title,
                "unit": chart.unit,
                "labels": labels,
                "data": [times]
                + [[_rounded(values.get(label)) for values in points] for label in labels],
            }
        )
    return charts


def charts_of_kept_runs(after=None):
    """The Monitoring page's data: the kept runs after run id `after` (all
    without it) turned into chart series, with what the page needs to merge
    them into what it has drawn: the newest run's id, and the oldest run
    still kept (older points are gone from the history) with the total kept."""
    rows = MonitoringRun.select(MonitoringRun.id, MonitoringRun.collected_at, MonitoringRun.data)
    if after is not None:
        rows = rows.where(MonitoringRun.id > after)
    runs, last = [], after
    for run_id, at, text in rows.order_by(MonitoringRun.id).tuples():
        runs.append((_unix(at), json.loads(text)["data"]))
        last = run_id
    oldest = MonitoringRun.select(
        peewee.fn.MIN(MonitoringRun.collected_at), peewee.fn.COUNT(MonitoringRun.id)
    ).scalar(as_tuple=True)
    return {
        "last": last,
        "oldest": _unix(oldest[0]) if oldest[0] else None,
        "kept": oldest[1],
        "charts": chart_series(runs),
    }


def _unix(moment):
    if isinstance(moment, str):  # SQLite hands back aggregates as text
        moment = datetime.datetime.fromisoformat(moment)
    return int(moment.replace(tzinfo=datetime.UTC).timestamp())
