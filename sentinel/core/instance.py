"""What Sentinel knows of the instance it watches, as /discover and the home page show it."""

from .. import host
from ..errors import PostgresUnavailable
from ..postgres import sql_folder

SQL = sql_folder(__file__)
PG_KEYS = ("pg_version", "pg_version_summary", "pg_port", "pg_block_size", "pg_data")


def _read(conn):
    return conn.queryone_file(SQL / "discover.sql"), conn.server_version


def discover(pg, settings, plugins):
    """The agent's /discover document.

    While PostgreSQL is down, `pg_port` stays the port Sentinel is configured
    to reach (the temBoard UI keys an instance by host and port) and the other
    `pg_*` are None, as the agent answers. `plugins` lists those of the
    instance's PostgreSQL version (all of them while it is down)."""
    facts = host.static_facts()
    found = {
        "hostname": settings["hostname"],
        "cpu": facts["cpu"],
        "memory_size": facts["memory_size"],
    }
    try:
        row, version = pg.run(_read)
    except PostgresUnavailable:
        row, version = dict.fromkeys(PG_KEYS), None
        row["pg_port"] = pg.port
    else:
        row["pg_data"] = row["pg_data"] or settings["pg_data"] or None
    found["plugins"] = [
        plugin.name for plugin in plugins if version is None or version >= plugin.min_pg_version
    ]
    found.update(row)
    return found
