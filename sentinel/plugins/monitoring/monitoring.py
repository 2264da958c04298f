"""Monitoring: probes on request, the periodic collector run and its history,
and the history turned into chart series for the Monitoring page."""

import datetime
import getpass
import json
import logging
import os
import pwd

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
