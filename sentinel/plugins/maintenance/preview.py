"""What an operation will do before it is confirmed: the lock it takes, the
size of what it works on, and the sessions that would hold it up now."""

from ...errors import NotFound
from ...postgres import sql_folder
from . import insight

SQL = sql_folder(__file__)

# PostgreSQL's table-level lock modes, and which of them each one waits for.
MODES = (
    "AccessShareLock",
    "RowShareLock",
    "RowExclusiveLock",
    "ShareUpdateExclusiveLock",
    "ShareLock",
    "ShareRowExclusiveLock",
    "ExclusiveLock",
    "AccessExclusiveLock",
)
CONFLICTS = {
    "AccessShareLock": {"AccessExclusiveLock"},
    "RowShareLock": {"ExclusiveLock", "AccessExclusiveLock"},
    "RowExclusiveLock": set(MODES[4:]),
    "ShareUpdateExclusiveLock": set(MODES[3:]),
    "ShareLock": {"RowExclusiveLock", *MODES[3:4], *MODES[5:]},
    "ShareRowExclusiveLock": set(MODES[2:4]) | set(MODES[4:]),
    "ExclusiveLock": set(MODES[1:]),
    "AccessExclusiveLock": set(MODES),
}


def lock_taken(operation, mode, index=False):
    """(lock mode on the relation, what it means for other sessions)."""
    if operation == "vacuum" and "full" in (mode or "").split(","):
        return "AccessExclusiveLock", "blocks every read and write of the table until it ends"
    if operation == "reindex":
        if index:
            return (
                "AccessExclusiveLock",
                "on the index: blocks the queries that would use it, and writes to its table",
            )
        return "ShareLock", "blocks writes to the table (reads go on) until it ends"
    return (
        "ShareUpdateExclusiveLock",
        "reads and writes go on; another VACUUM, ANALYZE or schema change waits",
    )


def preview(pool, dbname, schema, operation, mode=None, table=None, index=None):
    """The lock, the size and the sessions in the way of an operation on a
    table or index (None for a whole database: every table in turn)."""
    insight.check_database(pool, dbname)
    insight.check_names(schema, table, index)
    lock, effect = lock_taken(operation, mode, index is not None)
    if table is None and index is None:
        return {
            "lock": lock,
            "effect": f"{effect}, each table in turn",
            "size": None,
            "blockers": [],
        }

    def read(conn):
        row = conn.queryone(
            "SELECT c.oid, pg_total_relation_size(c.oid) AS size FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = %s AND c.relname = %s",
            (schema, table or index),
        )
        if row is None:
            raise NotFound(f"{'Table' if table else 'Index'} {schema}.{table or index} not found")
        holders = conn.query_file(SQL / "lock_holders.sql", {"relid": row["oid"]})
        return row["size"], holders

    size, holders = pool.run(read, dbname)
    blockers = [row for row in holders if row["granted"] and row["mode"] in CONFLICTS[lock]]
    return {"lock": lock, "effect": effect, "size": size, "blockers": blockers}
