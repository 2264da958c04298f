"""Activity: the instance's client backends, the backends waiting for locks and
those blocking them, the chains they form, and cancelling or terminating them.

Each backend row carries OS figures of its process (CPU and memory as a share
of the host, I/O rates, uninterruptible I/O wait), read from /proc by
sentinel.procfs. Rates are computed against the previous reading of the same
process kept in the shared sample store, whoever took it (another web
worker, the web page), so no request sleeps to measure them; a backend seen
for the first time reports 0. A backend asleep since that reading is not
read again.
"""

import collections
import logging
import time

import psycopg2
import psycopg2.errors

from ... import host, procfs, samples, state
from ...core import notifications
from ...errors import PostgresTimeout, PostgresUnavailable
from ...postgres import sql_folder

logger = logging.getLogger(__name__)

SQL = sql_folder(__file__)
MAX_PID = 2**31 - 1
UNITS = ("K", "M", "G", "T", "P", "E", "Z", "Y")
NO_FIGURES = {"iow": "N", "read_s": "0.00B", "write_s": "0.00B", "cpu": 0.0, "memory": 0.0}
# A sample stored less than this long ago stays the baseline of the next
# readings: rates over at most a second, never over a few milliseconds.
KEEP_SAMPLE_FOR = 1.0
# What each action sends, the key its answer uses, and the notification it records.
ACTIONS = {
    "terminate": ("SELECT pg_terminate_backend(%s)", "killed", "Backend {} terminated"),
    "cancel": ("SELECT pg_cancel_backend(%s)", "cancelled", "Query of backend {} cancelled"),
}


# -- OS figures of backend processes ------------------------------------------------


def human_rate(per_second):
    """Bytes per second as the agent writes them: "0.00B", "1.50K", "3.20M"
    (powers of 1024)."""
    if per_second < 0.005:
        return "0.00B"  # the usual case: most backends do no I/O between two looks
    value = round(per_second, 2)
    for power in range(len(UNITS), 0, -1):
        if value >= 1024**power:
            return f"{value / 1024**power:.2f}{UNITS[power - 1]}"
    return f"{value:.2f}B"


def os_figures(store, name, pids, asleep_since=None):
    """{pid: {"iow", "read_s", "write_s", "cpu", "memory"}} for backend
    processes, their rates measured since the sample `name` of the store.

    A reading of another process that had the same pid (another start time)
    does not count as previous. CPU time moves in 10 ms ticks, so over
    intervals well under a second the CPU figure is coarse; it is capped at
    one CPU, all a backend process can use.

    `asleep_since` ({pid: epoch seconds}) says since when PostgreSQL reports
    a backend waiting for its client or for a lock. One asleep since before
    its previous reading has used no CPU nor I/O since, and is the process
    that reading was of: the reading stands and /proc is not read again.
    """
    facts = host.static_facts()
    max_cpu = 100.0 / facts["cpu"]
    cpu_scale = 100.0 / host.CLOCK_TICKS / facts["cpu"]
    memory_scale = host.PAGE_SIZE * 100.0 / facts["memory_size"]
    asleep_since = asleep_since or {}
    previous = store.get(name)
    before_all = previous["backends"] if previous else {}
    # Taken before /proc is read: a reading is never stamped later than it was
    # taken, so a sleep that began after it is never taken for one before.
    now = time.time()
    current, figures = {}, {}
    for pid in pids:
        key = str(pid)
        before = before_all.get(key)
        since = asleep_since.get(pid)
        if before is not None and since is not None and since < before["at"]:
            current[key] = before
            figures[pid] = {**NO_FIGURES, "memory": round(before["rss"] * memory_scale, 2)}
            continue
        reading = procfs.read(pid)
        if reading is None:
            figures[pid] = dict(NO_FIGURES)
            continue
        current[key] = {
            "at": now,
            "start": reading.start,
            "cpu": reading.cpu,
            "read": reading.read_bytes,
            "write": reading.write_bytes,
            "rss": reading.rss_pages,
        }
        cpu = read_rate = write_rate = 0.0
        if before and before["start"] == reading.start and now > before["at"]:
            interval = now - before["at"]
            cpu = min(max(reading.cpu - before["cpu"], 0) * cpu_scale / interval, max_cpu)
            read_rate = max(reading.read_bytes - before["read"], 0) / interval
            write_rate = max(reading.write_bytes - before["write"], 0) / interval
        figures[pid] = {
            "iow": "Y" if reading.state == "D" else "N",
            "read_s": human_rate(read_rate),
            "write_s": human_rate(write_rate),
            "cpu": round(cpu, 2),
            "memory": round(reading.rss_pages * memory_scale, 2),
        }
    store.put(name, {"at": now, "backends": current}, replacing=previous, keep_for=KEEP_SAMPLE_FOR)
    return figures


def _asleep_since(*lists):
    """{pid: since when it waits for its client or a lock} of the rows of
    these lists, whose helper column goes."""
    asleep = {}
    for rows in lists:
        for row in rows:
            since = row.pop("_asleep_since")
            if since is not None:
                asleep[row["pid"]] = since
    return asleep


def _with_figures(rows, figures):
    return [{**row, **figures[row["pid"]]} for row in rows]


def _sample_name(identity, kind):
    # pids only mean something on their own host, and of their own instance.
    return samples.key(identity, "activity", kind)


# -- relations of other databases ---------------------------------------------------


def _name_relations(pg, locks):
    """Set `relation` where the SQL could not (a relation of another database,
    named by asking that database) and drop the helper keys. A database that
    cannot be reached leaves the OID, as the agent shows it."""
    wanted = collections.defaultdict(set)
    for lock in locks:
        if lock["relation"] is None and lock["relation_database"] is not None:
            wanted[lock["relation_database"]].add(lock["relation_oid"])
    names = {}
    for dbname, oids in wanted.items():
        try:
            with pg.connection(dbname) as conn:
                found = conn.query(
                    "SELECT oid, oid::regclass::text AS name FROM unnest(%s::oid[]) AS oid",
                    (sorted(oids),),
                )
        except (PostgresUnavailable, PostgresTimeout, psycopg2.Error) as exc:
            logger.debug("event=relation_names_unavailable database=%s error=%s", dbname, exc)
            continue
        names.update({(dbname, row["oid"]): row["name"] for row in found})
    for lock in locks:
        oid, dbname = lock.pop("relation_oid"), lock.pop("relation_database")
        if lock["relation"] is None:
            lock["relation"] = names.get((dbname, oid), str(oid))


# -- the lists ---------------------------------------------------------------------


def _query(conn, name):
    """The rows of sql/<name>.sql."""
    return conn.query_file(SQL / f"{name}.sql")


def backends(pg, store, identity):
    """/activity's rows: every client backend but the one asking, Sentinel's
    other connections included, longest-running first."""
    rows = pg.run(lambda conn: _query(conn, "activity"))
    pids = [row["pid"] for row in rows]
    name = _sample_name(identity, "backends")
    return _with_figures(rows, os_figures(store, name, pids, _asleep_since(rows)))


def _lock_list(pg, store, identity, kind):
    rows = pg.run(lambda conn: _query(conn, f"activity_{kind}"))
    _name_relations(pg, rows)
    pids = list(dict.fromkeys(row["pid"] for row in rows))
    name = _sample_name(identity, kind)
    return _with_figures(rows, os_figures(store, name, pids, _asleep_since(rows)))


def waiting(pg, store, identity):
    """/activity/waiting's rows: backends waiting for a lock, and which lock."""
    return _lock_list(pg, store, identity, "waiting")


def blocking(pg, store, identity):
    """/activity/blocking's rows: backends holding a lock others wait for, and which lock."""
    return _lock_list(pg, store, identity, "blocking")


# -- the lock tree -----------------------------------------------------------------


def _longest_first(node):
    return (-node["duration"], node["pid"])


def _tree(rows):
    """The blocking chains as trees rooted at the backends that block others
    without waiting themselves.

    Each root's tree is laid out breadth first and holds a backend once, at its
    shallowest place: a backend behind two roots appears under both, a cycle
    ends, and a queue of backends each blocked by all those ahead of it stays
    as large as the queue instead of growing with every path through it.
    """
    nodes = {row["pid"]: row for row in rows}
    children = collections.defaultdict(list)
    for row in rows:
        for blocker in row["blocked_by"]:
            if blocker in nodes:
                children[blocker].append(row)
    for waiters in children.values():
        waiters.sort(key=_longest_first)

    def shape(row):
        return {
            "pid": row["pid"],
            "database": row["database"],
            "user": row["user"],
            "state": row["state"],
            "query": row["query"],
            "duration": row["duration"],
            "xact_age": row["xact_age"],
            "wait_event_type": row["wait_event_type"],
            "wait_event": row["wait_event"],
            "locks": [dict(lock) for lock in row["locks"]],
            "blocking": [],
        }

    roots = sorted(
        (nodes[pid] for pid in children if not nodes[pid]["blocked_by"]), key=_longest_first
    )
    trees = []
    for root in roots:
        top = shape(root)
        placed = {root["pid"]}
        queue = collections.deque([top])
        while queue:
            parent = queue.popleft()
            for row in children.get(parent["pid"], ()):
                if row["pid"] not in placed:
                    placed.add(row["pid"])
                    node = shape(row)
                    parent["blocking"].append(node)
                    queue.append(node)
        trees.append(top)
    return trees


def _lock_rows(rows):
    return [lock for row in rows for lock in row["locks"]]


def lock_tree(pg):
    """/activity/locktree's roots: who blocks whom, recursively, with the locks
    each blocker holds that others wait for."""
    rows = pg.run(lambda conn: _query(conn, "locktree"))
    _name_relations(pg, _lock_rows(rows))
    return _tree(rows)


def overview(pg, store, identity):
    """The four views at once, as the web page shows them: one connection, one
    reading of each process."""

    def read(conn):
        return (
            _query(conn, "activity"),
            _query(conn, "activity_waiting"),
            _query(conn, "activity_blocking"),
            _query(conn, "locktree"),
        )

    running, waiters, blockers, tree_rows = pg.run(read)
    _name_relations(pg, [*waiters, *blockers, *_lock_rows(tree_rows)])
    pids = list(dict.fromkeys(row["pid"] for row in (*running, *waiters, *blockers)))
    asleep = _asleep_since(running, waiters, blockers)
    figures = os_figures(store, _sample_name(identity, "backends"), pids, asleep)
    return {
        "activity": _with_figures(running, figures),
        "waiting": _with_figures(waiters, figures),
        "blocking": _with_figures(blockers, figures),
        "locktree": _tree(tree_rows),
    }


# -- cancelling and terminating ---------------------------------------------------


def _send(conn, sql, pid):
    try:
        return bool(conn.queryscalar(sql, (pid,)))
    except psycopg2.errors.InsufficientPrivilege as exc:
        logger.warning("event=signal_refused pid=%s error=%s", pid, str(exc).strip())
        return False


def signal(pg, pids, action, username):
    """Cancel the query of, or terminate ("cancel" / "terminate"), each pid that is
    a client backend of the instance, but the one sending the signal and the
    state database's connection the notification is recorded through; anything
    else is never signalled. Returns [{"pid", <"cancelled" | "killed">: bool}]
    in the request's order, a repeated pid being signalled and answered true
    once. Each backend signalled is recorded in the notifications under
    `username`.

    Sentinel's connections are known by their pids, never by their
    application_name, which any client can take.
    """
    sql, key, message = ACTIONS[action]
    unique = list(dict.fromkeys(pids))
    # On another server than the instance, the state's pid may match an
    # unrelated backend there: it is refused too, the safe side.
    spared = [pid for pid in (state.backend_pid(),) if pid is not None]

    def send(conn):
        params = {"pids": unique, "spared": spared}
        eligible = {row["pid"] for row in conn.query_file(SQL / "activity_signalable.sql", params)}
        return [pid for pid in unique if pid in eligible and _send(conn, sql, pid)]

    signalled = set(pg.run(send)) if unique else set()
    for pid in unique:
        if pid in signalled:
            logger.info("event=backend_signalled action=%s pid=%s by=%s", action, pid, username)
            notifications.record(username, message.format(pid))
    answers, seen = [], set()
    for pid in pids:
        answers.append({"pid": pid, key: pid in signalled and pid not in seen})
        seen.add(pid)
    return answers
