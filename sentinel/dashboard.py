"""The dashboard data set: collected by the worker, served by /dashboard.

A data set has an instance part, read from PostgreSQL in one round trip
(sql/dashboard_instance.sql and sql/dashboard_databases.sql), and a host part
read with psutil. The CPU percentages are a rate: they are computed against
earlier CPU times (the collector's, kept in the shared sample store, or this
process's own previous live read), so nothing ever sleeps to measure them.

The collector keeps the newest `dashboard_history` data sets in Sentinel's
state. While PostgreSQL is down it stores the host part alone, as
/dashboard/live then answers.
"""

import datetime
import functools
import json
import logging
import platform
import time
from pathlib import Path

import psutil

from . import notifications
from .errors import Malformed, PostgresTimeout, PostgresUnavailable
from .host import static_facts
from .state import DashboardSample, compiled_once, database

logger = logging.getLogger(__name__)

CPU_KEYS = ("user", "system", "idle", "iowait", "steal")
# Shortest interval a CPU percentage is computed over: the kernel counts CPU
# time in ticks of 10 ms per CPU, too coarse to tell anything over less.
MIN_CPU_INTERVAL = 0.5
# A live read measures since this process's own previous one up to this age;
# past it, since the collector's newer record, not over a long stale interval.
OWN_READING_MAX_AGE = 5
NOTIFICATIONS = 15  # embedded in /dashboard and /dashboard/live, as the agent does
UNKNOWN_DISTRIBUTION = "Distrib. info N/A"  # the agent's words when it cannot tell


# -- the instance part ------------------------------------------------------------


def _instance_row(conn, with_databases):
    if not with_databases:
        return conn.named_one("dashboard_instance")
    # Both parts are one-row queries from our own files: joined, they make one
    # round trip instead of two.
    sql = (
        f"SELECT * FROM ({conn.sql('dashboard_instance')}) AS instance"
        f" CROSS JOIN ({conn.sql('dashboard_databases')}) AS databases"
    )
    rows = conn.prepared("dashboard_sample", sql)
    return rows[0] if rows else None


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
    row = pg.run(lambda conn: conn.named_one("dashboard_databases"))
    return _shape_databases(row, time.time())


# -- the host part ----------------------------------------------------------------


def _cpu_groups(times):
    """psutil's CPU times (or percentages) in the five groups the agent reports."""
    return {
        "user": times.user + times.nice,
        "system": times.system + times.irq + times.softirq,
        "idle": times.idle,
        "iowait": times.iowait,
        "steal": times.steal,
    }


def _usage(before, after):
    """Percentages of CPU time per group between two readings of the CPU times."""
    if before is None or set(before) != set(CPU_KEYS):
        return None
    deltas = {key: after[key] - before[key] for key in CPU_KEYS}
    total = sum(deltas.values())
    if total <= 0 or min(deltas.values()) < 0:  # a reboot in between
        return None
    return {key: round(deltas[key] * 100 / total, 1) for key in CPU_KEYS}


def cpu(samples, settings, record=False):
    """CPU usage in percent over the last few seconds.

    Only the collector (record=True, every dashboard_interval seconds) writes
    the shared record: the CPU times it read, when, and the usage it found. A
    live read measures since this process's own previous live read when that
    is at most OWN_READING_MAX_AGE old, so a page or a program polling the
    route costs no round trip to Redis; otherwise since the collector's record.
    Less than MIN_CPU_INTERVAL after the reading it would measure since, the
    kernel's clock ticks say nothing yet, so that reading's usage is answered.
    With no reading at all (no collector has run), the average since boot.
    """
    # Keyed by host: Sentinels of several hosts may share one Redis.
    namespace = f"dashboard:cpu:{settings['hostname']}"
    now, times = time.time(), _cpu_groups(psutil.cpu_times())
    if record:
        previous = samples.exchange(namespace, {"at": now, "times": times})
        usage = _usage_since(previous, times)
        samples.exchange(namespace, {"at": now, "times": times, "usage": usage})
        return usage
    previous = samples.own.get(namespace)
    if previous is None or not 0 <= now - previous["at"] <= OWN_READING_MAX_AGE:
        previous = samples.peek(namespace)
    if previous.get("usage") and 0 <= now - previous["at"] < MIN_CPU_INTERVAL:
        return previous["usage"]
    usage = _usage_since(previous, times)
    samples.own[namespace] = {"at": now, "times": times, "usage": usage}
    return usage


def _usage_since(previous, times):
    return _usage(previous.get("times"), times) or _usage(dict.fromkeys(CPU_KEYS, 0), times)


def loadaverage():
    """The 1-minute load average."""
    return psutil.getloadavg()[0]


def memory():
    """Total memory in kB, and the share free, cached and used by processes, in percent."""
    vm = psutil.virtual_memory()
    used = vm.total - vm.free - vm.cached
    return {
        "total": vm.total // 1024,
        "free": round(vm.free * 100 / vm.total, 1),
        "active": round(used * 100 / vm.total, 1),
        "cached": round(vm.cached * 100 / vm.total, 1),
    }


def os_version():
    """Operating system and kernel release, as /dashboard/os_version and /info say it."""
    return f"{platform.system()} {static_facts()['os_version']}"


@functools.cache
def linux_distribution():
    """The distribution's name from os-release, read once per process."""
    try:
        return platform.freedesktop_os_release().get("PRETTY_NAME") or UNKNOWN_DISTRIBUTION
    except OSError:
        return UNKNOWN_DISTRIBUTION


@functools.cache
def cpu_models(cpuinfo="/proc/cpuinfo"):
    """{model name: number of logical CPUs of that model}, read once per process."""
    models = {}
    try:
        lines = Path(cpuinfo).read_text().splitlines()
    except OSError:
        lines = []
    for line in lines:
        name, _, value = line.partition(":")
        if name.strip() == "model name":
            models[value.strip()] = models.get(value.strip(), 0) + 1
    return models or {platform.processor() or platform.machine(): static_facts()["cpu"]}


def host_part(samples, settings, record=False):
    """The host keys of a data set, read now (record: by the collector)."""
    return {
        "cpu": cpu(samples, settings, record),
        "loadaverage": loadaverage(),
        "memory": memory(),
        "hostname": settings["hostname"],
        "os_version": static_facts()["os_version"],
        "linux_distribution": linux_distribution(),
        "cpu_models": cpu_models(),
        "n_cpu": static_facts()["cpu"],
    }


# -- whole data sets ----------------------------------------------------------------


def measure(pg, samples, settings, record=False):
    """One data set, taken now: the host keys only while PostgreSQL does not answer."""
    try:
        data = instance_part(pg, settings)
    except (PostgresUnavailable, PostgresTimeout) as exc:
        logger.debug("event=dashboard_without_postgres reason=%s", exc)
        data = {}
    data.update(host_part(samples, settings, record))
    data["timestamp"] = time.time()
    return data


def live(pg, samples, settings):
    """/dashboard/live: a data set taken now, with the latest notifications."""
    data = measure(pg, samples, settings)
    data["notifications"] = notifications.recent(limit=NOTIFICATIONS)
    return data


# On the hot path of /dashboard and /dashboard/history: compiled once.
_newest_sql = compiled_once(
    lambda: (
        DashboardSample.select(DashboardSample.data).order_by(DashboardSample.id.desc()).limit(1)
    )
)


def _newest(limit):
    """The stored JSON texts of the newest `limit` samples, newest first."""
    return [data for (data,) in database.execute_sql(_newest_sql(), (limit,)).fetchall()]


def last_json():
    """/dashboard as JSON text: the last data set collected with the latest
    notifications spliced in (the stored text is not parsed); only the
    notifications before the collector's first run."""
    recent = json.dumps(notifications.recent(limit=NOTIFICATIONS))
    newest = _newest(1)
    if not newest:
        return f'{{"notifications": {recent}}}'
    # A stored data set is a non-empty JSON object: its closing brace is last.
    return f'{newest[0][:-1]}, "notifications": {recent}}}'


def last_sample():
    """The last data set collected, or None."""
    newest = _newest(1)
    return json.loads(newest[0]) if newest else None


def history_json(settings):
    """/dashboard/history as JSON text: at most `dashboard_history` data sets,
    oldest first. The stored texts are joined as they are, never parsed."""
    return "[" + ",".join(reversed(_newest(settings["dashboard_history"]))) + "]"


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


def store(data, keep):
    """Keep `data` as the newest sample and drop all but the newest `keep`."""
    with database.atomic():
        DashboardSample.create(collected_at=_utc(data["timestamp"]), data=json.dumps(data))
        oldest_kept = (
            DashboardSample.select(DashboardSample.id)
            .order_by(DashboardSample.id.desc())
            .offset(keep - 1)
            .limit(1)
            .scalar()
        )
        if oldest_kept is not None:
            DashboardSample.delete().where(DashboardSample.id < oldest_kept).execute()


def collect_and_store(pg, samples, settings):
    """Take one dashboard sample and keep the newest `dashboard_history`."""
    data = measure(pg, samples, settings, record=True)
    reachable = "pg_version" in data
    # Say so when PostgreSQL goes away or comes back, not every interval.
    before = samples.exchange(f"dashboard:postgres:{settings['hostname']}", {"up": reachable})
    if before.get("up", True) != reachable:
        event = "dashboard_postgres_back" if reachable else "dashboard_postgres_unreachable"
        logger.warning("event=%s", event)
    store(data, settings["dashboard_history"])
    return data


# -- the web page's charts ----------------------------------------------------------------


def parse_since(raw):
    """The `since` parameter: epoch seconds (Malformed otherwise), or None."""
    if raw is None:
        return None
    try:
        since = float(raw)
    except ValueError:
        raise Malformed("since") from None
    if not 0 <= since < 1e11:  # also refuses nan and inf
        raise Malformed("since")
    return since


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
