"""What Sentinel knows of the instance it watches, as /discover and the home page show it."""

from .errors import PostgresUnavailable
from .host import static_facts

PG_KEYS = ("pg_version", "pg_version_summary", "pg_port", "pg_block_size", "pg_data")


def discover(pg, settings, plugins):
    """The agent's /discover document; pg_* are None while PostgreSQL is down."""
    host = static_facts()
    pg_data = settings["pg_data"]
    facts = {
        "hostname": settings["hostname"],
        "cpu": host["cpu"],
        "memory_size": host["memory_size"],
        "plugins": list(plugins),
    }
    try:
        row = pg.run(lambda conn: conn.named_one("discover"))
    except PostgresUnavailable:
        row = dict.fromkeys(PG_KEYS)
        row["pg_data"] = pg_data or None
    else:
        row["pg_data"] = row["pg_data"] or pg_data or None
    facts.update(row)
    return facts
