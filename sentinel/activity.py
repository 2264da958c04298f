"""Activity: the instance's client backends, the backends waiting for locks and
those blocking them, the chains they form, and cancelling or terminating them.

Each backend row carries OS figures of its process (CPU and memory as a share
of the host, I/O rates, uninterruptible I/O wait), read from /proc by
sentinel.procfs: psutil would cost 50-130 µs per process, 10-25 ms for 200
backends, where /proc read directly costs about 17 µs. Rates are computed
against the previous reading of the same process kept in the shared sample
store, whoever took it (another worker, the web page), so no request sleeps to
measure them; a backend seen for the first time reports 0. A backend asleep
since that reading (waiting for its client or for a lock) is not read again.
"""

import collections
import logging
import threading
import time

import psycopg2
import psycopg2.errors

from . import host, notifications, procfs
from .errors import Malformed, NotSent, PostgresTimeout, PostgresUnavailable
from .postgres import APPLICATION_NAME

logger = logging.getLogger(__name__)

# Sentinel's own sessions: the pool's and the state database's, when it lives
# on the managed instance. They are not listed and never signalled.
OWN_APPLICATIONS = [APPLICATION_NAME, "sentinel-state"]
MAX_PID = 2**31 - 1
UNITS = ("K", "M", "G", "T", "P", "E", "Z", "Y")
NO_FIGURES = {"iow": "N", "read_s": "0.00B", "write_s": "0.00B", "cpu": 0.0, "memory": 0.0}
# A backend's sample: (start ticks, monotonic time, CPU ticks, read bytes,
# written bytes, RSS pages).
SAMPLE_FIELDS = 6
# An asleep backend's reading is taken again once this old (seconds), so its
# memory figure stays current even when it never runs.
REREAD_ASLEEP_AFTER = 30
# Below this many processes to re-read, a helper thread (75 µs) costs more
# than overlapping the reads with the query saves.
OVERLAP_FROM = 32
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


def os_figures(pending, pids, ahead=None, asleep_since=None):
    """{pid: {"iow", "read_s", "write_s", "cpu", "memory"}} for backend processes.

    Rates are computed against the previous readings `pending` fetched from
    the sample store (samples.fetch, sent before the SQL so both round trips
    overlap), and these readings take their place; a reading of another
    process that had the same pid (another start time) does not count as
    previous. CPU time moves in 10 ms ticks, so over intervals well under a
    second the CPU figure is coarse; it is capped at one CPU, all a backend
    process can use.

    `asleep_since` ({pid: epoch seconds}) names the backends PostgreSQL
    reports waiting for their client or for a lock, and since when. One that
    has waited since before its previous reading, taken less than
    REREAD_ASLEEP_AFTER ago, has used no CPU nor I/O since and is the same
    process: that reading stands, and its /proc files are not read again.
    `ahead` (None: the caller does not read ahead) is (monotonic time,
    {pid: reading}) of the readings _run_while_reading took a moment ago; the
    others are read now, and the ones needed are those it reads next time.
    Each reading is stamped with a time no later than it was taken, so a
    backend's sleep that began after it is never taken for one before.
    """
    facts = host.static_facts()
    cpus, memory_total = facts["cpu"], facts["memory_size"]
    max_cpu = 100.0 / cpus
    cpu_scale = 100.0 / procfs.CLOCK_TICKS / cpus
    memory_scale = procfs.PAGE_SIZE * 100.0 / memory_total
    previous = pending.result()
    now = time.monotonic()  # system-wide on Linux: comparable between processes
    wall = time.time() - now  # what to add to a monotonic time to compare it with PostgreSQL's

    asleep_since = asleep_since or {}
    current, figures, unread = {}, {}, []
    for pid in pids:
        key = str(pid)
        before = previous.get(key)
        since = asleep_since.get(pid)
        if (
            since is not None
            and before is not None
            and len(before) == SAMPLE_FIELDS
            and since < before[1] + wall
            and now - before[1] < REREAD_ASLEEP_AFTER
        ):
            current[key] = before
            figures[pid] = {**NO_FIGURES, "memory": round(before[5] * memory_scale, 2)}
        else:
            unread.append(pid)
    ahead_at, readings = ahead if ahead is not None else (None, {})
    if ahead is not None:
        procfs.reader.remember(unread)
    missing = [pid for pid in unread if readings.get(pid) is None]
    fresh = procfs.reader.samples(missing) if missing else {}
    for pid in unread:
        reading, at = (fresh[pid], now) if pid in fresh else (readings[pid], ahead_at)
        if reading is None:
            figures[pid] = dict(NO_FIGURES)
            continue
        start, state, ticks, rss_pages, read_bytes, write_bytes = reading
        key = str(pid)
        current[key] = (start, at, ticks, read_bytes, write_bytes, rss_pages)
        cpu = read_rate = write_rate = 0.0
        before = previous.get(key)
        if before and before[0] == start and at > before[1]:
            interval = at - before[1]
            cpu = min(max(ticks - before[2], 0) * cpu_scale / interval, max_cpu)
            read_rate = max(read_bytes - before[3], 0) / interval
            write_rate = max(write_bytes - before[4], 0) / interval
        figures[pid] = {
            "iow": "Y" if state == "D" else "N",
            "read_s": human_rate(read_rate),
            "write_s": human_rate(write_rate),
            "cpu": round(cpu, 2),
            "memory": round(rss_pages * memory_scale, 2),
        }
    if current:
        pending.renew(current)
    return figures


def _run_while_reading(pg, work):
    """(pg.run(work), (when, readings)): the SQL runs in a helper thread while
    this one reads /proc for the processes this web worker read last time. Most
    backends outlive the interval between two looks, so their reads overlap
    the query instead of following it. Only for the lists of every backend:
    the lock lists name a few, and reading all would cost them more."""
    known = procfs.reader.latest()
    if len(known) < OVERLAP_FROM:
        return pg.run(work), (None, {})
    outcome = {}

    def run():
        try:
            outcome["result"] = pg.run(work)
        except BaseException as exc:  # raised again in the request's thread
            outcome["error"] = exc

    helper = threading.Thread(target=run, name="activity-sql")
    helper.start()
    when = time.monotonic()
    readings = procfs.reader.samples(known)
    helper.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"], (when, readings)


def _with_figures(rows, figures):
    return [{**row, **figures[row["pid"]]} for row in rows]


def _asleep_since(*lists):
    """{pid: since when it waits for its client or a lock} of the backend
    rows of these lists, whose helper column goes."""
    asleep = {}
    for rows in lists:
        for row in rows:
            since = row.pop("_asleep_since")
            if since is not None:
                asleep[row["pid"]] = since
    return asleep


def _namespace(kind, hostname):
    # Keyed by host: Sentinels of several hosts may share one Redis, and pids
    # only mean something on their own host.
    return f"activity:{kind}:{hostname}"


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
            with pg.other_database(dbname) as conn:
                found = conn.query(
                    "SELECT oid, oid::regclass::text AS name FROM unnest(%s::oid[]) AS oid",
                    (sorted(oids),),
                )
        except (PostgresUnavailable, PostgresTimeout, psycopg2.Error) as exc:
            logger.info("event=relation_names_unavailable database=%s error=%s", dbname, exc)
            continue
        names.update({(dbname, row["oid"]): row["name"] for row in found})
    for lock in locks:
        oid, dbname = lock.pop("relation_oid"), lock.pop("relation_database")
        if lock["relation"] is None:
            lock["relation"] = names.get((dbname, oid), str(oid))


# -- the lists ---------------------------------------------------------------------


def _query(conn, name):
    """The rows of sql/<name>.sql; Sentinel's own application_names are `own`."""
    return conn.named(name, {"own": OWN_APPLICATIONS})


def backends(pg, samples, hostname):
    """/activity's rows: every client backend but Sentinel's own, longest-running first."""
    with samples.fetch(_namespace("backends", hostname)) as pending:
        rows, ahead = _run_while_reading(pg, lambda conn: _query(conn, "activity"))
        pids = [row["pid"] for row in rows]
        figures = os_figures(pending, pids, ahead, _asleep_since(rows))
    return _with_figures(rows, figures)


def _lock_list(pg, samples, hostname, kind):
    with samples.fetch(_namespace(kind, hostname)) as pending:
        rows = pg.run(lambda conn: _query(conn, f"activity_{kind}"))
        _name_relations(pg, rows)
        pids = list(dict.fromkeys(row["pid"] for row in rows))
        figures = os_figures(pending, pids, asleep_since=_asleep_since(rows))
    return _with_figures(rows, figures)


def waiting(pg, samples, hostname):
    """/activity/waiting's rows: backends waiting for a lock, and which lock."""
    return _lock_list(pg, samples, hostname, "waiting")


def blocking(pg, samples, hostname):
    """/activity/blocking's rows: backends holding a lock others wait for, and which lock."""
    return _lock_list(pg, samples, hostname, "blocking")


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


def overview(pg, samples, hostname):
    """The four views at once, as the web page shows them: one connection, one
    reading of each process."""

    def read(conn):
        return (
            _query(conn, "activity"),
            _query(conn, "activity_waiting"),
            _query(conn, "activity_blocking"),
            _query(conn, "locktree"),
        )

    with samples.fetch(_namespace("backends", hostname)) as pending:
        (running, waiters, blockers, tree_rows), ahead = _run_while_reading(pg, read)
        _name_relations(pg, [*waiters, *blockers, *_lock_rows(tree_rows)])
        pids = list(dict.fromkeys(row["pid"] for row in (*running, *waiters, *blockers)))
        figures = os_figures(pending, pids, ahead, _asleep_since(running, waiters, blockers))
    return {
        "activity": _with_figures(running, figures),
        "waiting": _with_figures(waiters, figures),
        "blocking": _with_figures(blockers, figures),
        "locktree": _tree(tree_rows),
    }


# -- cancelling and terminating ---------------------------------------------------


def check_pids(body):
    """The `pids` of a request body: a list of process ids, or NotSent / Malformed (406)."""
    if not isinstance(body, dict):
        raise Malformed("pids")
    if "pids" not in body:
        raise NotSent("pids")
    pids = body["pids"]
    # type() rather than isinstance(): JSON true and false are not pids.
    if not isinstance(pids, list) or not all(
        type(pid) is int and 1 <= pid <= MAX_PID for pid in pids
    ):
        raise Malformed("pids")
    return pids


def _send(conn, sql, pid):
    try:
        return bool(conn.queryscalar(sql, (pid,)))
    except psycopg2.errors.InsufficientPrivilege as exc:
        logger.warning("event=signal_refused pid=%s error=%s", pid, str(exc).strip())
        return False


def signal(pg, pids, action, username):
    """Cancel the query of, or terminate ("cancel" / "terminate"), each pid that is
    a client backend of the instance other than Sentinel's own; anything else is
    never signalled. Returns [{"pid", <"cancelled" | "killed">: bool}] in the
    request's order, a repeated pid being signalled and answered true once.
    Each backend signalled is recorded in the notifications under `username`.
    """
    sql, key, message = ACTIONS[action]
    unique = list(dict.fromkeys(pids))

    def send(conn):
        params = {"pids": unique, "own": OWN_APPLICATIONS}
        eligible = {row["pid"] for row in conn.named("activity_signalable", params)}
        return [pid for pid in unique if pid in eligible and _send(conn, sql, pid)]

    signalled = set(pg.run(send)) if unique else set()
    for pid in unique:
        if pid in signalled:
            notifications.record(username, message.format(pid))
    answers, seen = [], set()
    for pid in pids:
        answers.append({"pid": pid, key: pid in signalled and pid not in seen})
        seen.add(pid)
    return answers
