"""The Monitoring page's charts: each probe's records in the kept runs turned
into series of one kind of figure, and why a chart has nothing to draw when
the runs tell.

Values stay in base units (bytes, bytes per second, percent, counts): the
page formats them, in binary units for sizes.
"""

import datetime
import json
from collections.abc import Callable
from dataclasses import dataclass, field

import peewee

from ...state import MonitoringRun
from . import probes

# How the page shows a chart's figures (static/charts.js, docs/ui-charts.md).
COUNT, PERCENT, BYTES, RATE, PER_SECOND, NUMBER = (
    "count",  # integers: sessions, locks, processes
    "percent",  # 0-100
    "bytes",  # sizes
    "rate",  # bytes per second
    "per_second",  # events per second: transactions, blocks, buffers
    "number",  # anything else: a load average
)

# Counters are increases over measure_interval: a rate needs one run only,
# but a probe measured against its previous sample has nothing at the first.
NEEDS_PREVIOUS_RUN = frozenset(
    ("xacts", "blocks", "bgwriter", "cpu", "process", "wal_files", "temp_files_size_delta")
)
ON_STANDBY_ONLY = frozenset(("replication_lag", "replication_connection"))


def _per_second(records, key):
    return sum(r[key] / r["measure_interval"] for r in records if r["measure_interval"] > 0)


def _rates(**columns):
    def series(records):
        if not records:
            return {}
        return {label: _per_second(records, key) for label, key in columns.items()}

    return series


def _each(name_key, value):
    def series(records):
        return {r[name_key]: value(r) for r in records}

    return series


def _single(**values):
    def series(records):
        return {label: value(records[0]) for label, value in values.items()} if records else {}

    return series


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
        "granted": sum(r[mode] for r in records for mode in (*probes.LOCK_MODES, "siread")),
        "waiting": sum(r[f"waiting_{mode}"] for r in records for mode in probes.LOCK_MODES),
    }


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
    return {
        "used": r["mem_used"] - r["mem_cached"] - r["mem_buffers"],
        "cached": r["mem_cached"],
        "buffers": r["mem_buffers"],
        "free": r["mem_free"],
        "swap used": r["swap_used"],
    }


def _temp_files(record):
    return record["size"] / record["measure_interval"] if record["measure_interval"] else None


@dataclass(frozen=True)
class Chart:
    """One chart: a probe's records of a run -> {series label: value}."""

    probe: str
    title: str
    kind: str
    series: Callable
    labels: tuple = field(default_factory=tuple)  # shown before any value exists


CHARTS = (
    Chart("sessions", "Sessions", COUNT, _sessions, ("active", "idle", "idle in transaction")),
    Chart(
        "xacts",
        "Transactions",
        PER_SECOND,
        _rates(commits="n_commit", rollbacks="n_rollback"),
        ("commits", "rollbacks"),
    ),
    Chart("locks", "Locks", COUNT, _locks, ("granted", "waiting")),
    Chart(
        "blocks", "Blocks", PER_SECOND, _rates(read="blks_read", hit="blks_hit"), ("read", "hit")
    ),
    Chart(
        "bgwriter",
        "Buffers written",
        PER_SECOND,
        _rates(
            checkpoint="buffers_checkpoint",
            **{"background writer": "buffers_clean"},
            backends="buffers_backend",
        ),
        ("checkpoint", "background writer", "backends"),
    ),
    Chart("db_size", "Database size", BYTES, _each("dbname", lambda r: r["size"])),
    Chart("tblspc_size", "Tablespace size", BYTES, _each("spcname", lambda r: r["size"])),
    Chart(
        "filesystems_size",
        "File systems used",
        PERCENT,
        _each("mount_point", lambda r: 100 * r["used"] / r["total"]),
    ),
    Chart("cpu", "CPU", PERCENT, _cpu, ("user", "system", "iowait", "steal")),
    # Forks per second are left out: a rate on a count axis would read as processes.
    Chart(
        "process",
        "Processes",
        COUNT,
        _single(running=lambda r: r["procs_running"], blocked=lambda r: r["procs_blocked"]),
        ("running", "blocked"),
    ),
    Chart("memory", "Memory", BYTES, _memory, ("used", "cached", "buffers", "free")),
    Chart(
        "loadavg",
        "Load average",
        NUMBER,
        _single(
            **{key: (lambda r, key=key: float(r[key])) for key in ("load1", "load5", "load15")}
        ),
        ("load1", "load5", "load15"),
    ),
    Chart(
        "wal_files",
        "WAL written",
        RATE,
        _single(written=lambda r: r["written_size"] / r["measure_interval"]),
        ("written",),
    ),
    Chart("replication_lag", "Replication lag", BYTES, _single(lag=lambda r: r["lag"]), ("lag",)),
    Chart("temp_files_size_delta", "Temporary files written", RATE, _each("dbname", _temp_files)),
    Chart(
        "replication_connection",
        "Streaming from upstream",
        COUNT,
        _single(connected=lambda r: r["connected"]),
        ("connected",),
    ),
    Chart("heap_bloat", "Table bloat (estimate)", PERCENT, _each("dbname", lambda r: r["ratio"])),
    Chart("btree_bloat", "Index bloat (estimate)", PERCENT, _each("dbname", lambda r: r["ratio"])),
)


def why_empty(chart, last_run):
    """Why `chart` has nothing to draw, as the newest run tells, or None when
    no run explains it (the page then says when the next run is due)."""
    instance = (last_run.get("instances") or [{}])[0]
    if chart.probe not in probes.HOST_PROBES and not instance.get("available", True):
        return "PostgreSQL did not answer at the last run."
    if chart.probe in ON_STANDBY_ONLY and instance.get("standby") is False:
        return "No replication: this instance is a primary, not a standby."
    if chart.probe == "wal_files" and instance.get("standby"):
        return "A standby writes no WAL of its own."
    if chart.probe == "replication_lag":
        return "No WAL received from the primary yet."
    if chart.probe not in last_run.get("data", {}):
        return "The probe failed at the last run: the worker's log says why."
    if chart.probe in NEEDS_PREVIOUS_RUN:
        return None
    return "The probe found nothing to measure."


def _rounded(value):
    return round(value, 3) if isinstance(value, float) else value


def chart_series(runs):
    """Charts from runs [(unix seconds, run)], oldest first: for each of
    CHARTS {"probe", "title", "kind", "labels", "data", "note"}, data being
    [[times...], [values of labels[0]...], ...] with None where a run has no
    value, and note why there is no value at all (see why_empty)."""
    charts = []
    times = [moment for moment, _ in runs]
    for chart in CHARTS:
        labels = list(chart.labels)
        points = []
        for _, run in runs:
            values = chart.series(run["data"].get(chart.probe) or [])
            labels += [label for label in values if label not in labels]
            points.append(values)
        columns = [[_rounded(values.get(label)) for values in points] for label in labels]
        empty = all(value is None for column in columns for value in column)
        charts.append(
            {
                "probe": chart.probe,
                "title": chart.title,
                "kind": chart.kind,
                "labels": labels,
                "data": [times, *columns],
                "note": why_empty(chart, runs[-1][1]) if runs and empty else None,
            }
        )
    return charts


def of_kept_runs(range_seconds, after=None):
    """The page's data: the kept runs of the last `range_seconds`, those
    after run id `after` only with it, as chart series; with what the page
    needs to merge them into what it drew: the newest run's id and time,
    `since` (older points are out of the range, or no longer kept), and how
    many runs are kept in all."""
    now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
    start = now - datetime.timedelta(seconds=range_seconds)
    rows = MonitoringRun.select(
        MonitoringRun.id, MonitoringRun.collected_at, MonitoringRun.data
    ).where(MonitoringRun.collected_at >= start)
    if after is not None:
        rows = rows.where(MonitoringRun.id > after)
    runs, last = [], after
    for run_id, at, text in rows.order_by(MonitoringRun.id).tuples():
        runs.append((_unix(at), json.loads(text)))
        last = run_id
    oldest, newest, kept = MonitoringRun.select(
        peewee.fn.MIN(MonitoringRun.collected_at),
        peewee.fn.MAX(MonitoringRun.collected_at),
        peewee.fn.COUNT(MonitoringRun.id),
    ).scalar(as_tuple=True)
    return {
        "last": last,
        "last_at": _unix(newest) if newest else None,
        "since": max(_unix(oldest), _unix(start)) if oldest else _unix(start),
        "kept": kept,
        "now": _unix(now),
        "charts": chart_series(runs),
    }


def _unix(moment):
    if isinstance(moment, str):  # SQLite hands back aggregates as text
        moment = datetime.datetime.fromisoformat(moment)
    return int(moment.replace(tzinfo=datetime.UTC).timestamp())
