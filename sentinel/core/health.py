"""The instance's health at a glance, as the home page shows it: each figure
with its status (ok, warning, critical, unknown) by the thresholds below,
which docs/ui.md explains.

One query reads the instance (sql/health.sql). Transactions per second and
WAL written per second are measured against the previous reading, kept in the
shared sample store, so no request sleeps; the collectors' last runs come
from Sentinel's state.
"""

import datetime

from .. import samples
from ..errors import PostgresTimeout, PostgresUnavailable
from ..postgres import sql_folder
from ..state import DashboardSample, MonitoringRun

SQL = sql_folder(__file__)

OK, WARNING, CRITICAL, UNKNOWN = "ok", "warning", "critical", "unknown"
# A reading taken less than this long after the previous one keeps that one
# as the baseline and answers its rates: rates over a second at least.
KEEP_READING_FOR = 1.0

# (warning from, critical from) of each figure that has thresholds; a figure
# at or above the first is a warning, at or above the second critical.
THRESHOLDS = {
    "connections": (75.0, 90.0),  # % of max_connections in use
    "longest_query": (60.0, 300.0),  # seconds an active query has run
    "longest_transaction": (300.0, 1800.0),  # seconds a transaction has been open
    "blocked": (1, 5),  # backends waiting for a lock
    "pending_restart": (1, None),  # settings changed that need a restart
}
# The cache hit ratio is better high: below the first it is a warning, below
# the second critical.
HIT_RATIO = (95.0, 90.0)
# A collector whose last run is older than this many of its intervals is
# late (warning), and stopped (critical) past the second.
COLLECTOR_LATE = (3, 10)


def level(name, value):
    """The status of `value` for the figure `name` by THRESHOLDS."""
    if value is None:
        return UNKNOWN
    warning, critical = THRESHOLDS[name]
    if critical is not None and value >= critical:
        return CRITICAL
    return WARNING if value >= warning else OK


def hit_ratio_level(ratio):
    if ratio is None:
        return UNKNOWN
    warning, critical = HIT_RATIO
    return CRITICAL if ratio < critical else WARNING if ratio < warning else OK


def read(pg):
    """The health query's row, or None while PostgreSQL does not answer (with
    why, as the second value)."""
    try:
        return pg.run(lambda conn: conn.queryone_file(SQL / "health.sql")), None
    except (PostgresUnavailable, PostgresTimeout) as exc:
        return None, getattr(exc, "reason", None) or str(exc)


def _per_second(previous, row, key):
    """The increase per second of the counter `key` since `previous`, or None
    without a previous reading of the same server run, or across a reset."""
    if not previous or previous.get("started_at") != row["started_at"]:
        return None
    before, after = previous.get(key), row[key]
    interval = row["at"] - previous["at"]
    if before is None or after is None or interval <= 0 or after < before:
        return None
    return round((after - before) / interval, 2)


def rates(store, name, row):
    """{"tps", "wal_rate"} since the previous reading kept under `name`."""
    previous = store.get(name)
    if previous and 0 <= row["at"] - previous["at"] < KEEP_READING_FOR:
        return previous["rates"]
    found = {
        "tps": _per_second(previous, row, "transactions"),
        "wal_rate": _per_second(previous, row, "wal_position"),
    }
    reading = {key: row[key] for key in ("at", "started_at", "transactions", "wal_position")}
    store.put(name, {**reading, "rates": found})
    return found


def _epoch(naive_utc):
    if naive_utc is None:
        return None
    return naive_utc.replace(tzinfo=datetime.UTC).timestamp()


def collectors(settings, now):
    """When each collector last ran (epoch seconds, or None) and how late it is."""
    runs = {
        "dashboard": (DashboardSample, settings["dashboard_interval"]),
        "monitoring": (MonitoringRun, settings["monitoring_interval"]),
    }
    found, statuses = {}, []
    for name, (model, interval) in runs.items():
        last = _epoch(model.select(model.collected_at).order_by(model.id.desc()).scalar())
        found[name] = last
        if last is None:
            statuses.append(WARNING)  # never ran: is the worker running?
            continue
        late, stopped = (times * interval for times in COLLECTOR_LATE)
        age = now - last
        statuses.append(CRITICAL if age > stopped else WARNING if age > late else OK)
    return {**found, "status": _worst(statuses)}


def _worst(statuses):
    for status in (CRITICAL, WARNING, UNKNOWN):
        if status in statuses:
            return status
    return OK


def measure(pg, store, settings, now):
    """The home page's figures, read now (`now`: epoch seconds)."""
    row, reason = read(pg)
    health = {"at": now, "collectors": collectors(settings, now)}
    if row is None:
        return {**health, "up": False, "reason": reason, "status": CRITICAL}
    found = rates(store, samples.key(pg.identity(settings["hostname"]), "home", "counters"), row)
    used = row["connections"] * 100.0 / row["max_connections"]
    tps, wal_rate = found["tps"], found["wal_rate"]
    return {
        **health,
        "up": True,
        "reason": None,
        "status": OK,
        "started_at": row["started_at"],
        "version": row["version_summary"],
        "port": row["port"],
        "data_directory": row["data_directory"] or settings["pg_data"] or None,
        "connections": {
            "used": row["connections"],
            "max": row["max_connections"],
            "status": level("connections", used),
        },
        "tps": {"value": tps, "status": UNKNOWN if tps is None else OK},
        "hit_ratio": {"value": row["hit_ratio"], "status": hit_ratio_level(row["hit_ratio"])},
        "longest_query": {
            "seconds": row["longest_query"],
            "pid": row["longest_query_pid"],
            "status": level("longest_query", row["longest_query"] or 0),
        },
        "longest_transaction": {
            "seconds": row["longest_transaction"],
            "pid": row["longest_transaction_pid"],
            "state": row["longest_transaction_state"],
            "status": level("longest_transaction", row["longest_transaction"] or 0),
        },
        "blocked": {"count": row["blocked"], "status": level("blocked", row["blocked"])},
        "wal_rate": {
            "value": wal_rate,
            "standby": row["standby"],
            "status": UNKNOWN if wal_rate is None else OK,
        },
        "pending_restart": {
            "settings": row["pending_restart"],
            "status": level("pending_restart", len(row["pending_restart"])),
        },
    }
