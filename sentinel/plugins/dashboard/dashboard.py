"""The dashboard data set: collected by the worker, served by /dashboard.

A data set has an instance part, read from PostgreSQL (sql/instance.sql and
sql/databases.sql, on one connection), and a host part (sentinel.host). The
CPU percentages are a rate: they are computed against earlier CPU times kept
in the shared sample store, so nothing ever sleeps to measure them. The
collector and the live routes keep separate baselines, so that polling the
routes never shortens the interval the collector measures over.

The collector keeps the newest `dashboard_history` data sets in Sentinel's
state. While PostgreSQL is down it stores the host part alone, as
/dashboard/live then answers.
"""

import datetime
import json
import logging
import time

from ... import host, samples
from ...core import notifications
from ...errors import PostgresTimeout, PostgresUnavailable
from ...postgres import sql_folder
from ...state import DashboardSample, database

logger = logging.getLogger(__name__)

SQL = sql_folder(__file__)
CPU_KEYS = ("user", "system", "idle", "iowait", "steal")
# Shortest interval a CPU percentage is computed over: the kernel counts CPU
# time in ticks of 10 ms per CPU, too coarse to tell anything over less.
MIN_CPU_INTERVAL = 0.5
NOTIFICATIONS = 15  # embedded in /dashboard and /dashboard/live, as the agent does


# -- the instance part ------------------------------------------------------------


def _instance_row(conn, with_databases):
    row = conn.queryone_file(SQL / "instance.sql")
    if with_databases:
        row.update(conn.queryone_file(SQL / "databases.sql"))
    return row


def _shape_instance(row, settings, now):
    facts = {
        "buffers": {"nb": row["buffers"], "time": now},
        "hitratio": row["hitratio"],
        "active_backends": {"nb": row["active_backends"], "time": now},
        "max_connections": row["max_connections"],
    }
    if "databases" in row:
        facts["databases"] = _shape_databases(row, now)
    facts.update(
        pg_uptime=row["pg_uptime"],
        pg_version=row["pg_version"],
        pg_data=row["pg_data"] or settings["pg_data"] or None,
        pg_port=row["pg_port"],
    )
    return facts


def _shape_databases(row, now):
    return {
        "databases": row["databases"],
        "total_size": row["total_size"],
        "time": row["time"],
        "total_commit": row["total_commit"],
        "total_rollback": row["total_rollback"],
        "timestamp": now,
    }


def instance_part(pg, settings, with_databases=True):
    """The PostgreSQL keys of a data set, read now (PostgresUnavailable when down).

    Without databases, no database size is computed: that walk of the data
    directory is the only costly read of the set.
    """
    row = pg.run(lambda conn: _instance_row(conn, with_databases))
    return _shape_instance(row, settings, time.time())


def databases(pg):
    """How many databases, their total size and transactions, read now."""
    row = pg.run(lambda conn: conn.queryone_file(SQL / "databases.sql"))
    return _shape_databases(row, time.time())


# -- the host part ----------------------------------------------------------------


def _usage(before, after):
    """Percentages of CPU time per group between two readings of the CPU times."""
    if before is None or set(before) != set(CPU_KEYS):
        return None
    deltas = {key: after[key] - before[key] for key in CPU_KEYS}
    total = sum(deltas.values())
    if total <= 0 or min(deltas.values()) < 0:  # a reboot in between
        return None
    return {key: round(deltas[key] * 100 / total, 1) for key in CPU_KEYS}


def cpu(store, settings, baseline="live"):
    """CPU usage in percent since the previous reading of the same `baseline`
    ("collector": the periodic collector's; "live": the routes', shared by
    every web worker).

    Less than MIN_CPU_INTERVAL after that reading, the kernel's clock ticks
    say nothing yet: the usage that reading found is answered, and it stays
    the baseline. With no reading at all, the average since boot.
    """
    name = samples.key(settings["hostname"], "host", "cpu", baseline)
    now, times = time.time(), host.cpu_times()
    previous = store.get(name) or {}
    if previous.get("usage") and 0 <= now - previous["at"] < MIN_CPU_INTERVAL:
        return previous["usage"]
    usage = _usage(previous.get("times"), times) or _usage(dict.fromkeys(CPU_KEYS, 0), times)
    # Kept with the usage it found, answered again by calls within MIN_CPU_INTERVAL.
    store.put(name, {"at": now, "times": times, "usage": usage})
    return usage


def loadaverage():
    """The 1-minute load average."""
    return host.load_average()


def memory():
    """Total memory in kB, and the share free, cached and used by processes, in percent."""
    return host.memory_usage()


def os_version():
    """Operating system and kernel release, as /dashboard/os_version and /info say it."""
    facts = host.static_facts()
    return f"{facts['os']} {facts['os_version']}"


def host_part(store, settings, baseline="live"):
    """The host keys of a data set, read now."""
    return {
        "cpu": cpu(store, settings, baseline),
        "loadaverage": loadaverage(),
        "memory": memory(),
        "hostname": settings["hostname"],
        "os_version": host.static_facts()["os_version"],
        "linux_distribution": host.distribution(),
        "cpu_models": host.cpu_models(),
        "n_cpu": host.static_facts()["cpu"],
    }


# -- whole data sets ----------------------------------------------------------------


def measure(pg, store, settings, baseline="live"):
    """One data set, taken now: the host keys only while PostgreSQL does not answer."""
    try:
        data = instance_part(pg, settings)
    except (PostgresUnavailable, PostgresTimeout) as exc:
        logger.debug("event=dashboard_without_postgres reason=%s", exc)
        data = {}
    data.update(host_part(store, settings, baseline))
    data["timestamp"] = time.time()
    return data


def live(pg, store, settings):
    """/dashboard/live: a data set taken now, with the latest notifications."""
    data = measure(pg, store, settings)
    data["notifications"] = notifications.recent(limit=NOTIFICATIONS)
    return data


def _newest(limit):
    """The JSON texts of the newest `limit` data sets collected, newest first."""
    query = DashboardSample.select(DashboardSample.data).order_by(DashboardSample.id.desc())
    return [data for (data,) in query.limit(limit).tuples()]


def last_sample():
    """The last data set collected, or None."""
    newest = _newest(1)
    return json.loads(newest[0]) if newest else None


def last():
    """/dashboard: the last data set collected with the latest notifications
    (only the notifications before the collector's first run)."""
    data = last_sample() or {}
    data["notifications"] = notifications.recent(limit=NOTIFICATIONS)
    return data


def history(settings):
    """/dashboard/history: the JSON texts of at most `dashboard_history` data
    sets, oldest first."""
    return _newest(settings["dashboard_history"])[::-1]


def info(pg, settings):
    """/dashboard/info: the host and the instance in a few words, read now."""
    facts = instance_part(pg, settings, with_databases=False)
    return {
        "hostname": settings["hostname"],
        "os_version": os_version(),
        "pg_uptime": facts["pg_uptime"],
        "pg_version": facts["pg_version"],
        "pg_data": facts["pg_data"],
        "pg_port": facts["pg_port"],
    }


def config(settings):
    """/dashboard/config: how often the collector runs and how much it keeps."""
    return {
        "scheduler_interval": settings["dashboard_interval"],
        "history_length": settings["dashboard_history"],
    }


# -- the collector --------------------------------------------------------------------


def _utc(timestamp):
    return datetime.datetime.fromtimestamp(timestamp, datetime.UTC).replace(tzinfo=None)


def keep(data, count):
    """Keep `data` as the newest sample and drop all but the newest `count`."""
    with database.atomic():
        DashboardSample.create(collected_at=_utc(data["timestamp"]), data=json.dumps(data))
        oldest_kept = (
            DashboardSample.select(DashboardSample.id)
            .order_by(DashboardSample.id.desc())
            .offset(count - 1)
            .limit(1)
            .scalar()
        )
        if oldest_kept is not None:
            DashboardSample.delete().where(DashboardSample.id < oldest_kept).execute()


def collect_and_store(pg, store, settings):
    """Take one dashboard sample and keep the newest `dashboard_history`."""
    data = measure(pg, store, settings, baseline="collector")
    reachable = "pg_version" in data
    # Say so when PostgreSQL goes away or comes back, not every interval.
    name = samples.key(pg.identity(settings["hostname"]), "dashboard", "reachable")
    before = store.swap(name, {"at": data["timestamp"], "up": reachable}) or {}
    if before.get("up", True) != reachable:
        instance = pg.identity(settings["hostname"])
        if reachable:
            logger.info("event=postgres_back instance=%s", instance)
        else:
            logger.warning("event=postgres_unavailable instance=%s", instance)
    keep(data, settings["dashboard_history"])
    return data


# -- the web page's charts ----------------------------------------------------------------


def _transactions(data):
    databases = data.get("databases")
    if not databases:
        return None
    return databases["total_commit"] + databases["total_rollback"], databases["timestamp"]


def _tps(previous, current):
    """Commits and rollbacks per second between two data sets; None without
    both counters, or across a statistics reset or a restart."""
    before, after = _transactions(previous or {}), _transactions(current)
    if before is None or after is None or after[1] <= before[1] or after[0] < before[0]:
        return None
    return round((after[0] - before[0]) / (after[1] - before[1]), 2)


def _point(data, previous):
    cpu_usage = data["cpu"]
    active = data.get("active_backends")
    return {
        "time": data["timestamp"],
        "cpu": {key: cpu_usage[key] for key in ("user", "system", "iowait")},
        "memory": {key: data["memory"][key] for key in ("active", "cached")},
        "loadaverage": data["loadaverage"],
        "tps": _tps(previous, data),
        "hitratio": data.get("hitratio"),
        "active_backends": active["nb"] if active else None,
    }


def chart_points(settings, since=None):
    """What the dashboard page draws: one point per sample taken after `since`
    (epoch seconds; all kept samples when None), oldest first."""
    limit = settings["dashboard_history"]
    query = DashboardSample.select(DashboardSample.data).order_by(DashboardSample.id.desc())
    if since is not None:
        # The sample the page drew last is fetched again: it is the predecessor
        # the first new point's transaction rate is computed from.
        query = query.where(DashboardSample.collected_at >= _utc(since))
    rows = [json.loads(row.data) for row in query.limit(limit + 1)]
    rows.reverse()
    points, previous = [], None
    for data in rows:
        points.append(_point(data, previous))
        previous = data
    if since is not None:
        points = [point for point in points if point["time"] > since]
    return points[-limit:]


def headline(data):
    """The few figures the page shows as text, from a data set (or None)."""
    if data is None:
        return None
    facts = {
        "time": data["timestamp"],
        "collected_at": _utc(data["timestamp"]).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "hostname": data["hostname"],
        "postgres": False,
    }
    if "pg_version" in data:
        facts.update(
            postgres=True,
            pg_version=data["pg_version"],
            uptime=human_duration(data["pg_uptime"]),
            databases=data["databases"]["databases"],
            total_size=data["databases"]["total_size"],
            max_connections=data["max_connections"],
        )
    return facts


def human_duration(seconds):
    """3725 -> '1 h 2 min': the largest unit and the next are enough for an uptime."""
    units = (("d", 86400), ("h", 3600), ("min", 60), ("s", 1))
    for (name, size), (next_name, next_size) in zip(units, units[1:], strict=False):
        if seconds >= size:
            return f"{seconds // size} {name} {seconds % size // next_size} {next_name}"
    return f"{seconds} s"
