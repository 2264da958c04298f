"""Agentless collection of the pool, on RQ workers.

`dispatch` (a core periodic job, run by the cron leader only) enqueues one
`run` per (source, dbname, slot) that is due and was not enqueued yet; `run`
collects the metrics due at that slot on one database of one source and
records them; `discover` keeps a continuous-discovery source's databases in
step with its server; `purge` deletes samples older than the retention.

A slot is the epoch second a run is due at, a multiple of its interval. A run
at slot S collects every metric whose interval divides S, so the metrics of
two groups due at the same second go in one run (history keeps one run per
(source, dbname, slot)). How runs reach the worker that holds a source's open
connection is `connections`' business. Docs: docs/pool-collection.md.
"""

import functools
import hashlib
import logging
import math
import re
import sqlite3
import time
import uuid

import orjson
import peewee
import psycopg2
import psycopg2.extensions
import redis
from flask import current_app
from peewee import JOIN, fn
from rq import Queue
from rq.exceptions import DuplicateJobError
from rq.timeouts import JobTimeoutException

from .. import jobs
from ..errors import NotFound, SourceUnreachable
from ..extensions import redis as redis_extension
from ..state import database, utcnow
from . import catalog, connections, history, probe, schedule, store
from .models import DiscoveredDatabase, LatestSample, ReplicationSlot, Sample, Source

logger = logging.getLogger(__name__)

DISPATCHED = "sentinel:pool:dispatched"  # hash "<source id>/<dbname>/<interval>" -> last slot
DISCOVERY = "sentinel:pool:discovery"  # hash "<source id>" -> last discovery slot
RUNNING = "sentinel:pool:running:"  # + "<source id>/<dbname>": the run lock
NEXT_DUE = "sentinel:pool:next-due"  # "<pool version>|<epoch second of the next due run>"
BUSY = "sentinel:pool:busy"  # hash worker -> epoch second its current run started
BUSY_FOR = 1.0  # s in one run after which a worker's held sources go to the shared queue
SLOW = "sentinel:pool:slow"  # hash "<source id>/<dbname>" -> when a run of it was last slow
SLOW_RUN = 2.0  # s: a run that took longer marks its (source, dbname) slow
SLOW_FOR = 300  # s a slow mark is heeded after the last slow run
MAX_BUDGET = 60  # s a run may take at most, whatever its interval
BACKLOG = 5  # jobs waiting on a holder's queue beyond which new runs go to the shared queue
BATCH = 20  # runs of healthy sources due together in one job: RQ spends ~6 ms of CPU a job
DISCOVERY_TIMEOUT = 60
DISPATCH_TIMEOUT = 60  # s a round may hold the dispatcher's lock
LOCK_WAIT = 5  # s discovery waits for a run of the source's own database to end
RECHECK_EVERY = 300  # s between two looks at a server's extensions and the user's roles
SEPARATELY_FOR = 300  # s metrics run one by one after running them together failed
SAFE_ID = re.compile(r"[A-Za-z0-9_]{1,63}")

UNLOCK = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


def _settings():
    return current_app.config["SENTINEL"]


# -- the dispatcher ------------------------------------------------------------------------


def dispatch():
    """Enqueue the runs that came due since the last round; returns how many.

    A round costs one small query and one Redis read while nothing is due and
    no source changed; else it reads every enabled source. Rounds never
    overlap (a lock), so a run is enqueued once however long a round takes."""
    connection = redis_extension.connection
    now = int(time.time())
    version = _pool_version()
    planned = connection.get(NEXT_DUE)
    if planned is not None:
        planned_version, _, due_at = planned.decode().rpartition("|")
        if planned_version == version and now < int(due_at):
            return 0
    lock = _Locked(connection, "dispatcher", "all", DISPATCH_TIMEOUT)
    if not lock.take():
        return 0
    try:
        return _dispatch(connection, now, version)
    finally:
        lock.release()


def _pool_version():
    """What changes whenever a source is created, changed, deleted or a
    database discovered or dropped: the dispatcher's plan is then redone."""
    sources = Source.select(fn.COUNT(Source.id), fn.MAX(Source.updated_at)).tuples()
    found = DiscoveredDatabase.select(
        fn.COUNT(DiscoveredDatabase.id), fn.MAX(DiscoveredDatabase.found_at)
    ).tuples()
    return f"{sources[0]}{found[0]}"


def _dispatch(connection, now, version):
    monitored = _monitored()
    pipe = connection.pipeline(transaction=False)
    pipe.hgetall(DISPATCHED)
    pipe.hgetall(connections.HOLDERS)
    pipe.hgetall(DISCOVERY)
    pipe.hgetall(SLOW)
    pipe.hgetall(BUSY)
    dispatched, holders, discovered, slow, busy = pipe.execute()
    dispatched = {field.decode(): int(slot) for field, slot in dispatched.items()}
    holders = {name.decode(): worker.decode() for name, worker in holders.items()}
    slow = {name.decode(): float(at) for name, at in slow.items()}
    healed = [name for name, at in slow.items() if at < now - SLOW_FOR]
    slow = {name for name in slow if name not in healed}
    busy = {worker.decode(): float(since) for worker, since in busy.items()}
    # No run outlives its job's timeout: older entries are of workers killed mid-run.
    dead = [worker for worker, since in busy.items() if since < now - 10 * MAX_BUDGET]
    clock = time.time()
    busy = {worker for worker, since in busy.items() if clock - since > BUSY_FOR}

    due, seen, changed = {}, set(), {}
    every = _settings()["pool_discovery_interval"]
    next_due = (now // every + 1) * every
    for source_id, dbname, intervals, _ in monitored:
        for interval in intervals:
            field = f"{source_id}/{dbname}/{interval}"
            slot = now // interval * interval
            next_due = min(next_due, slot + interval)
            seen.add(field)
            if dispatched.get(field) != slot:
                due.setdefault((source_id, dbname, slot), []).append(interval)
                changed[field] = slot

    live = connections.live_workers(connection, set(holders.values()))
    # A worker holding a slow source may be stuck in its runs for seconds: it
    # keeps those, and gives up the others, so nobody else waits behind them.
    stuck = {holders[name] for name in slow if name in holders}
    connected = {source_id for source_id, _, _, up in monitored if up}
    moved, batches = set(), {}
    enqueued = 0
    for (source_id, dbname, slot), intervals in due.items():
        name = connections.key(source_id, dbname)
        worker = holders.get(name)
        queue = jobs.QUEUE
        if worker in stuck and name not in slow:
            moved.add(name)
        elif worker in live and live[worker] < BACKLOG and worker not in busy:
            # Held by a worker not stuck in a run: it reuses its open connection.
            queue = connections.queue_name(worker)
        interval = min(intervals)
        if name in slow or source_id not in connected:
            # On its own: it may take its whole budget, and nobody should wait on it.
            enqueued += _enqueue_run(connection, source_id, dbname, interval, slot, queue)
        else:
            batches.setdefault((queue, interval, slot), []).append([source_id, dbname])
    for (queue, interval, slot), targets in batches.items():
        for start in range(0, len(targets), BATCH):
            enqueued += _enqueue_batch(
                connection, interval, slot, targets[start : start + BATCH], queue
            )

    writes = connection.pipeline(transaction=False)
    if changed:
        writes.hset(DISPATCHED, mapping=changed)
    gone = [field for field in dispatched if field not in seen]
    if gone:
        writes.hdel(DISPATCHED, *gone)
    watched = {connections.key(source_id, dbname) for source_id, dbname, _, _ in monitored}
    forgotten = [name for name in holders if name not in watched or name in moved]
    if forgotten:
        # Their holders close the connections at their next look (connections.reap).
        writes.hdel(connections.HOLDERS, *forgotten)
    if healed:
        writes.hdel(SLOW, *healed)
    if dead:
        writes.hdel(BUSY, *dead)
    for worker in set(holders.values()) - set(live):
        # A worker gone without a word (killed): the runs left on its own
        # queue would wait there for nobody.
        writes.delete(Queue.redis_queue_namespace_prefix + connections.queue_name(worker))
    _dispatch_discoveries(connection, writes, now, discovered)
    writes.set(NEXT_DUE, f"{version}|{next_due}", ex=3600)
    writes.execute()
    if enqueued:
        logger.debug("event=pool_dispatched runs=%s", enqueued)
    return enqueued


def _monitored():
    """[(source id, dbname, (interval, ...), connected)] of every enabled
    source: its own database, or each database a continuous-discovery source
    found. One query."""
    query = (
        Source.select(
            Source.connected,
            Source.id,
            Source.kind,
            Source.dbname,
            Source.metrics,
            Source.preset,
            Source.collection_rate,
            Source.standby_metrics,
            Source.standby_preset,
            DiscoveredDatabase.dbname,
        )
        .join(DiscoveredDatabase, JOIN.LEFT_OUTER, on=(DiscoveredDatabase.source == Source.id))
        .where(Source.enabled == True)  # noqa: E712 - a SQL comparison
        .tuples()
    )
    intervals_of = {}
    monitored = []
    for (
        up,
        source_id,
        kind,
        dbname,
        metrics,
        preset,
        rate,
        standby_metrics,
        standby_preset,
        found,
    ) in query:
        if kind == "postgres-continuous-discovery":
            if found is None:
                continue
            dbname = found
        key = (str(metrics), preset, rate, str(standby_metrics), standby_preset)
        if key not in intervals_of:
            source = {
                "metrics": metrics,
                "preset": preset,
                "collection_rate": rate,
                "standby_metrics": standby_metrics,
                "standby_preset": standby_preset,
            }
            every = set(schedule.intervals(source).values())
            every |= set((_standby_intervals(source) or {}).values())
            intervals_of[key] = tuple(sorted(every))
        monitored.append((source_id, dbname, intervals_of[key], up is True))
    return monitored


def _standby_intervals(source):
    """{metric: seconds} a source collects on a standby, when it says so;
    None when it collects there what it does on a primary."""
    if not source["standby_metrics"] and not source["standby_preset"]:
        return None
    return schedule.intervals(
        {
            "metrics": source["standby_metrics"],
            "preset": source["standby_preset"],
            "collection_rate": None,
        }
    )


def _job_part(dbname):
    """A database name as RQ accepts it in a job id."""
    if SAFE_ID.fullmatch(dbname):
        return dbname
    return "x" + hashlib.blake2b(dbname.encode(), digest_size=8).hexdigest()


def _enqueue_run(connection, source_id, dbname, interval, slot, queue):
    budget = _budget(interval)
    try:
        jobs.enqueue(
            connection,
            run,
            source_id,
            dbname,
            interval,
            slot,
            job_id=f"pool-run-{source_id}-{_job_part(dbname)}-{interval}-{slot}",
            timeout=_hard_limit(budget),
            ttl=interval,
            unique=True,
            queue=queue,
            keep_result=False,
        )
    except DuplicateJobError:
        return 0
    return 1


def _enqueue_batch(connection, interval, slot, targets, queue):
    if len(targets) == 1:
        [[source_id, dbname]] = targets
        return _enqueue_run(connection, source_id, dbname, interval, slot, queue)
    digest = hashlib.blake2b(repr(targets).encode(), digest_size=8).hexdigest()
    try:
        jobs.enqueue(
            connection,
            run_batch,
            interval,
            slot,
            targets,
            job_id=f"pool-batch-{interval}-{slot}-{digest}",
            timeout=_hard_limit(_budget(interval)),
            ttl=interval,
            unique=True,
            queue=queue,
            keep_result=False,
        )
    except DuplicateJobError:
        return 0
    return len(targets)


def _dispatch_discoveries(connection, writes, now, discovered):
    every = _settings()["pool_discovery_interval"]
    slot = now // every * every
    last = {source_id.decode(): int(at) for source_id, at in discovered.items()}
    sources = Source.select(Source.id).where(
        Source.enabled == True,  # noqa: E712 - a SQL comparison
        Source.kind == "postgres-continuous-discovery",
    )
    for (source_id,) in sources.tuples():
        if last.pop(source_id, None) == slot:
            continue
        try:
            jobs.enqueue(
                connection,
                discover,
                source_id,
                job_id=f"pool-discover-{source_id}-{slot}",
                timeout=DISCOVERY_TIMEOUT,
                ttl=every,
                unique=True,
            )
        except DuplicateJobError:
            pass
        writes.hset(DISCOVERY, source_id, slot)
    if last:
        writes.hdel(DISCOVERY, *last)


def _budget(interval):
    """Seconds a run of that interval may spend collecting."""
    return max(1, min(interval, MAX_BUDGET))


def _hard_limit(budget):
    # A query started just before the budget ran out may take its statement_timeout.
    return budget + probe.QUERY_TIMEOUT // 1000 + 5


# -- a run ---------------------------------------------------------------------------------


class _Locked:
    """The run lock of a (source, dbname): SET NX EX, released only by its taker."""

    def __init__(self, connection, source_id, dbname, seconds):
        self.connection = connection
        self.name = RUNNING + connections.key(source_id, dbname)
        self.token = uuid.uuid4().hex
        self.seconds = math.ceil(seconds)

    def take(self, wait=0):
        deadline = time.monotonic() + wait
        while True:
            if self._take():
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.1)

    def _take(self):
        if connections.identity is None:
            return self.connection.set(self.name, self.token, nx=True, ex=self.seconds)
        # In the same round trip: this worker is in a run since now (see BUSY).
        pipe = self.connection.pipeline(transaction=False)
        pipe.set(self.name, self.token, nx=True, ex=self.seconds)
        pipe.hset(BUSY, connections.identity, time.time())
        return pipe.execute()[0]

    def release(self, claim=None):
        """Release the lock; with `claim` (a "<source id>/<dbname>"), claim
        it for this worker in the same round trip, and say whether it may
        keep its connection."""
        try:
            if connections.identity is None:
                self.connection.eval(UNLOCK, 1, self.name, self.token)
                return False
            keys = (self.name, BUSY, connections.HOLDERS)
            args = (self.token, connections.identity, claim or "", connections.ALIVE)
            return bool(self.connection.eval(connections.FINISH, 3, *keys, *args))
        except redis.RedisError:
            return False  # the lock expires by itself


def run_batch(interval, slot, targets):
    """`run` each [source id, dbname] of `targets` in turn, all due at `slot`,
    within one run's time budget: the runs that did not start in time are
    skipped, and logged. One job for many runs of sources that answered last
    time: RQ's own work on a job costs more than a run."""
    deadline = time.monotonic() + _budget(interval)
    done = 0
    for source_id, dbname in targets:
        left = deadline - time.monotonic()
        if left < 1:
            logger.warning(
                "event=pool_batch_late slot=%s interval=%s skipped=%s",
                slot,
                interval,
                len(targets) - done,
            )
            break
        try:
            run(source_id, dbname, interval, slot, budget=left)
        except JobTimeoutException:
            raise
        except Exception:
            # One run's bug must not cost the others theirs.
            logger.exception("event=pool_run_failed source=%s dbname=%s", source_id, dbname)
        done += 1
    return done


def run(source_id, dbname, interval, slot, budget=None):
    """Collect the metrics of one source's database due at `slot`, and
    record how it went on the source. Skips when a run of the same (source,
    dbname) is under way. `budget`: seconds it may take (default: its
    interval's budget)."""
    connection = redis_extension.connection
    budget = _budget(interval) if budget is None else min(budget, _budget(interval))
    lock = _Locked(connection, source_id, dbname, _hard_limit(budget))
    if not lock.take():
        # Usual while a pool's first runs open their connections: not news.
        logger.debug(
            "event=pool_run_skipped source=%s dbname=%s slot=%s reason=running",
            source_id,
            dbname,
            slot,
        )
        return None
    started = time.monotonic()
    opened = []  # the connection the run leaves open, if any
    try:
        return _run(connection, source_id, dbname, interval, slot, budget, opened)
    finally:
        claim = connections.key(source_id, dbname) if opened else None
        if lock.release(claim=claim):
            connections.cache.keep(source_id, dbname, opened[0], connection)
        elif opened:
            opened[0].close()
        if time.monotonic() - started > SLOW_RUN:
            _mark_slow(connection, source_id, dbname)


def _mark_slow(connection, source_id, dbname):
    try:
        connection.hset(SLOW, connections.key(source_id, dbname), int(time.time()))
    except redis.RedisError:
        pass


def _run(connection, source_id, dbname, interval, slot, budget, opened):
    deadline = time.monotonic() + budget
    source = _source(source_id)
    if source is None or not source["enabled"] or not _still_monitored(source, dbname):
        connections.cache.drop(source_id, dbname, connection)
        return None
    params = probe.parameters(source, dbname)
    fingerprint = connections.fingerprint(params)
    cached = connections.cache.take(source_id, dbname, fingerprint)
    try:
        if cached is not None:
            try:
                outcome = _collect(cached, source, dbname, interval, slot, deadline)
            except psycopg2.Error:
                if not cached.connection.closed:
                    raise
                # The server closed it while it was idle (a restart): once more, afresh.
                cached.close()
                cached = None
        if cached is None:
            cached = connections.Cached(probe.connect(params, timeout=int(budget)), fingerprint)
            _prepare(cached.connection)
            outcome = _collect(cached, source, dbname, interval, slot, deadline)
    except SourceUnreachable as exc:
        return _unreachable(connection, source, dbname, cached, exc.message)
    except psycopg2.Error as exc:
        return _unreachable(connection, source, dbname, cached, _reason(exc, params))
    opened.append(cached)  # kept or closed as the run lock is released
    results, errors, slots = outcome
    _record(source, dbname, slot, results, errors, slots)
    return {"metrics": len(results), "errors": len(errors)}


# This worker process's copy of the sources it ran: {id: (updated_at, the
# store's dict)}. Every change through the store (its slots included) moves
# updated_at, so a run reads one row's three columns with a plain statement
# and the store's dict only when it changed: the store's read (two queries
# built by peewee, the password decrypted) was ~1 ms of a run's ~5 ms of CPU.
_known = {}


def _source(source_id):
    """The store's dict of a source, its passwords in clear, or None."""
    if not isinstance(source_id, str) or not connections.UUID.fullmatch(source_id):
        return None  # only ever an id here, never a name
    cursor = database.execute_sql(
        f"SELECT updated_at, connected, last_error FROM {Source._meta.table_name}"
        f" WHERE id = {database.param}",
        (source_id,),
    )
    row = cursor.fetchone()
    if row is None:
        _known.pop(source_id, None)
        return None
    updated_at, connected, last_error = row
    known = _known.get(source_id)
    if known is None or known[0] != updated_at:
        try:
            known = (updated_at, store.get(source_id, show_password=True))
        except NotFound:
            return None
        _known[source_id] = known
    # What runs change (the rest only the store does) as it is now.
    if connected is not None:
        connected = bool(connected)  # SQLite's 0 or 1
    return {**known[1], "connected": connected, "last_error": last_error}


def _still_monitored(source, dbname):
    if source["kind"] != "postgres-continuous-discovery":
        return dbname == source["dbname"]
    return (
        DiscoveredDatabase.select()
        .where(DiscoveredDatabase.source == source["id"], DiscoveredDatabase.dbname == dbname)
        .exists()
    )


def _float(value, cursor):
    return None if value is None else float(value)


# numeric columns come back as float, which JSON (and Prometheus) can hold.
NUMERIC_AS_FLOAT = psycopg2.extensions.new_type(
    psycopg2.extensions.DECIMAL.values, "SENTINEL_NUMERIC_AS_FLOAT", _float
)


def _prepare(pg):
    # Each metric in its own statement: one failing leaves nothing to roll back.
    pg.autocommit = True
    psycopg2.extensions.register_type(NUMERIC_AS_FLOAT, pg)


def _reason(exc, params=None):
    """The first line of a driver's error, the password never in it."""
    text = str(exc).strip()
    reason = text.splitlines()[0] if text else type(exc).__name__
    if params and params["password"]:
        reason = reason.replace(params["password"], "********")
    return reason


def _unreachable(connection, source, dbname, cached, reason):
    if cached is not None:
        cached.close()
    connections.cache.drop(source["id"], dbname, connection)
    if dbname != source["dbname"] and f'database "{dbname}" does not exist' in reason:
        # A discovered database dropped since: discovery forgets it, the source is fine.
        logger.debug("event=pool_database_gone source=%s dbname=%s", source["name"], dbname)
        return {"metrics": 0, "errors": 0}
    Source.update(connected=False, last_error=reason).where(Source.id == source["id"]).execute()
    # Said once when it goes away, not at every run while it stays away.
    level = logging.DEBUG if source["last_error"] == reason else logging.INFO
    logger.log(
        level,
        "event=pool_source_unreachable source=%s dbname=%s error=%s",
        source["name"],
        dbname,
        reason,
    )
    return {"metrics": 0, "errors": 1}


# Once a connection (and every RECHECK_EVERY): whether the server is a
# standby, and what `requires` may name.
SERVER_STATE = """
SELECT pg_is_in_recovery(),
       ARRAY(SELECT extname::text FROM pg_extension),
       ARRAY(SELECT rolname::text FROM pg_roles WHERE pg_has_role(oid, 'USAGE'))
"""


def _collect(cached, source, dbname, interval, slot, deadline):
    """({metric: rows}, [error, ...], slot health rows or None) of one run."""
    pg = cached.connection
    if cached.checked_at < time.monotonic() - RECHECK_EVERY:
        try:
            cached.standby, extensions, roles = _rows(pg, SERVER_STATE, dicts=False)[0]
        except psycopg2.Error as exc:
            if pg.closed:
                raise
            return {}, [f"server state: {_reason(exc)}"], None
        cached.met = {f"extension:{name}" for name in extensions}
        cached.met |= {f"role:{name}" for name in roles}
        cached.checked_at = time.monotonic()
    instance = _instance_database(source, dbname)
    names = _runnable(source, slot, cached, instance)
    results, errors = {}, []
    if names and cached.together_after <= time.monotonic():
        try:
            standby, results = _together(pg, names, cached.major)
        except psycopg2.Error:
            if pg.closed:
                raise
            # One metric failed them all: each on its own for a while, to say which.
            cached.together_after = time.monotonic() + SEPARATELY_FOR
        else:
            if standby != cached.standby:  # promoted, or demoted, since the last run
                cached.standby = standby
                names = _runnable(source, slot, cached, instance)
                results = {name: rows for name, rows in results.items() if name in names}
    for name in names:
        if name in results:
            continue
        if time.monotonic() >= deadline:
            errors.append(f"metric {name}: not run, the run's time budget was spent")
            continue
        try:
            results[name] = _rows(pg, catalog.sql_for(name, cached.major))
        except psycopg2.Error as exc:
            if pg.closed:
                raise  # the connection is gone, not the metric
            errors.append(f"metric {name}: {_reason(exc)}")
    slots = None
    if instance and interval == min(schedule.intervals(source).values(), default=interval):
        if source["replication_slots"]:
            slots = results.get("replication_slots")
            if slots is None:
                slots = _rows(pg, catalog.sql_for("replication_slots", cached.major))
    return results, errors, slots


def _runnable(source, slot, cached, instance):
    """The metrics due at `slot` that this server and database run."""
    names = []
    for name in _due(source, cached.standby, slot):
        metric = catalog.metric(name)
        if metric["node_status"] == ("primary" if cached.standby else "standby"):
            continue
        if metric["instance_level"] and not instance:
            continue
        if "requires" in metric and metric["requires"] not in cached.met:
            continue
        if catalog.sql_for(name, cached.major) is not None:
            names.append(name)
    return names


def _together(pg, names, major):
    """(pg_is_in_recovery(), {metric: rows}) of every metric in one query: the
    server hands each metric's rows as JSON text, a round trip and no Python
    object per value. Raises the first metric's error for them all."""
    with pg.cursor() as cursor:
        cursor.execute(_together_sql(tuple(names), major))
        standby, *texts = cursor.fetchone()
    return standby, {name: orjson.loads(text) for name, text in zip(names, texts, strict=True)}


# pg_stat_activity built once for every metric of a run that reads it. The
# view copies a row of ~30 columns per backend (its query text too) each time
# a query names it: with 1,000 connections open on the server, 5-7 ms of the
# server's CPU per mention, eight mentions in the standard preset's minute.
# A CTE of that name shadows the view for the unqualified names inside.
SHARED_ACTIVITY = (
    "WITH pg_stat_activity AS {materialized}(SELECT * FROM pg_catalog.pg_stat_activity)\n"
)
MENTIONS_ACTIVITY = re.compile(r"\bpg_stat_activity\b")


@functools.lru_cache(maxsize=256)
def _together_sql(names, major):
    # The catalog's own SQL (code, not input), each as a subquery; a newline
    # before the closing parenthesis, in case one ends with a comment.
    statements = [_statement(name, major) for name in names]
    parts = [
        f"(SELECT coalesce(json_agg(m), '[]')::text FROM ({statement}\n) AS m)"
        for statement in statements
    ]
    sql = "SELECT pg_is_in_recovery(),\n" + ",\n".join(parts)
    if sum(bool(MENTIONS_ACTIVITY.search(statement)) for statement in statements) > 1:
        # Before 12 every CTE is materialised, and MATERIALIZED is not known.
        sql = SHARED_ACTIVITY.format(materialized="MATERIALIZED " if major >= 12 else "") + sql
    return sql


def _statement(name, major):
    return catalog.sql_for(name, major).strip().rstrip(";")


def _rows(pg, sql, dicts=True):
    with pg.cursor() as cursor:
        cursor.execute(sql)
        if not dicts:
            return cursor.fetchall()
        names = [column.name for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _due(source, standby, slot):
    """The metrics due at `slot`, on a standby or a primary."""
    if standby and source["only_if_primary"]:
        return []
    wanted = (_standby_intervals(source) if standby else None) or schedule.intervals(source)
    return sorted(name for name, seconds in wanted.items() if slot % seconds == 0)


def _instance_database(source, dbname):
    """Whether instance-level metrics run on this database of the source: its
    own database, or for a continuous-discovery source that did not find it,
    the first database found."""
    if dbname == source["dbname"] or source["kind"] != "postgres-continuous-discovery":
        return True
    found = DiscoveredDatabase.select(DiscoveredDatabase.dbname).where(
        DiscoveredDatabase.source == source["id"]
    )
    names = {row.dbname for row in found}
    return source["dbname"] not in names and dbname == min(names, default=None)


def _record(source, dbname, slot, results, errors, slots):
    """Write one run: its samples, the source's status and its slots' health,
    in one transaction."""
    now = utcnow()
    collected_at = time.time()
    changes = {"connected": True, "last_error": "; ".join(errors) or None}
    if results or not errors:
        changes["last_collected_at"] = now
    for attempt in range(1, WRITE_ATTEMPTS + 1):
        try:
            with database.atomic():
                history.record(source["id"], dbname, slot, collected_at, results)
                _update_status(source["id"], changes)
                if slots is not None:
                    _record_slots(source["replication_slots"], slots, now)
            break
        except peewee.IntegrityError:
            # Deleted while it ran (its samples' source is gone): nothing to keep.
            logger.debug("event=pool_run_dropped source=%s reason=deleted", source["name"])
            return
        except (peewee.OperationalError, sqlite3.OperationalError) as exc:
            # history writes through the driver's cursor: its errors come unwrapped.
            if "locked" not in str(exc) or attempt == WRITE_ATTEMPTS:
                raise
            logger.info(
                "event=pool_run_write_retried source=%s dbname=%s attempt=%s",
                source["name"],
                dbname,
                attempt,
            )
            time.sleep(0.05 * attempt)
    if errors:
        logger.info(
            "event=pool_run_errors source=%s dbname=%s errors=%s",
            source["name"],
            dbname,
            len(errors),
        )


def _update_status(source_id, changes):
    """Set a source's run status columns. A plain statement through the
    cursor: peewee built the same UPDATE with about 0.4 ms of CPU, a tenth
    of a run's. With peewee's the bench's collector CPU per 1,000 values was
    1.01x the exporter's (the target: at most 1x), with this one 0.96x."""
    columns = sorted(changes)
    assignments = ", ".join(f"{column} = {database.param}" for column in columns)
    values = [getattr(Source, column).db_value(changes[column]) for column in columns]
    database.execute_sql(
        f"UPDATE {Source._meta.table_name} SET {assignments} WHERE id = {database.param}",
        (*values, source_id),
    )


# SQLite state: a run's write tried again this many times when the database
# stayed locked past its busy_timeout (the transaction is undone each time).
WRITE_ATTEMPTS = 3


def _record_slots(registered, rows, now):
    """Each registered slot's health from the catalog's replication_slots rows;
    a slot the server no longer has is inactive, the rest unknown."""
    seen = {row["slot_name"]: row for row in rows}
    for slot in registered:
        row = seen.get(slot["slot_name"])
        if row is None:
            health = {"active": False, "retained_wal_bytes": None, "xmin_age": None}
        else:
            ages = [age for age in (row["xmin_age"], row["catalog_xmin_age"]) if age is not None]
            health = {
                "active": bool(row["active"]),
                "retained_wal_bytes": row["retained_wal_bytes"],
                "xmin_age": max(ages, default=None),
            }
        ReplicationSlot.update(**health, checked_at=now).where(
            ReplicationSlot.id == slot["id"]
        ).execute()


# -- continuous discovery ------------------------------------------------------------------

DATABASES = """
SELECT datname::text FROM pg_database
WHERE datallowconn AND NOT datistemplate
  AND has_database_privilege(datname, 'CONNECT')
  AND (%(include)s = '' OR datname ~ %(include)s)
  AND (%(exclude)s = '' OR datname !~ %(exclude)s)
ORDER BY datname
"""


def discover(source_id):
    """Bring a continuous-discovery source's databases in step with its
    server: those matching its patterns added, those gone removed with their
    samples. Returns {"added": [...], "removed": [...]}, or None."""
    source = _source(source_id)
    if source is None or not source["enabled"]:
        return None
    connection = redis_extension.connection
    dbname = source["dbname"]
    # Through the run lock and cache of its own database: no third connection.
    lock = _Locked(connection, source_id, dbname, DISCOVERY_TIMEOUT)
    if not lock.take(wait=LOCK_WAIT):
        logger.info("event=pool_discovery_skipped source=%s reason=running", source["name"])
        return None
    try:
        return _discover(connection, source)
    finally:
        lock.release()


def _discover(connection, source):
    source_id, dbname = source["id"], source["dbname"]
    params = probe.parameters(source, dbname)
    fingerprint = connections.fingerprint(params)
    cached = connections.cache.take(source_id, dbname, fingerprint)
    try:
        if cached is None:
            cached = connections.Cached(probe.connect(params), fingerprint)
            _prepare(cached.connection)
        with cached.connection.cursor() as cursor:
            cursor.execute(
                DATABASES,
                {"include": source["include_pattern"], "exclude": source["exclude_pattern"]},
            )
            found = {row[0] for row in cursor.fetchall()}
    except SourceUnreachable as exc:
        _unreachable(connection, source, dbname, cached, exc.message)
        return None
    except psycopg2.Error as exc:
        if cached is not None:
            cached.close()
        reason = f"discovery: {_reason(exc)}"
        Source.update(last_error=reason).where(Source.id == source_id).execute()
        logger.info("event=pool_discovery_failed source=%s error=%s", source["name"], reason)
        return None
    # Kept only if it is the one its database's runs use too.
    if dbname in found:
        connections.cache.give_back(source_id, dbname, cached, connection)
    else:
        cached.close()
    return _sync_databases(source, found)


def _sync_databases(source, found):
    source_id = source["id"]
    known = {
        row.dbname
        for row in DiscoveredDatabase.select(DiscoveredDatabase.dbname).where(
            DiscoveredDatabase.source == source_id
        )
    }
    added, removed = sorted(found - known), sorted(known - found)
    with database.atomic():
        if added:
            DiscoveredDatabase.insert_many(
                [{"source": source_id, "dbname": name} for name in added]
            ).on_conflict_ignore().execute()
        if removed:
            for model in (DiscoveredDatabase, Sample, LatestSample):
                model.delete().where(model.source == source_id, model.dbname << removed).execute()
    if added or removed:
        logger.info(
            "event=pool_databases_discovered source=%s added=%s removed=%s",
            source["name"],
            ",".join(added),
            ",".join(removed),
        )
    return {"added": added, "removed": removed}


# -- retention -----------------------------------------------------------------------------


def purge():
    """Delete the samples of runs older than pool_retention; returns how many."""
    deleted = history.purge(int(time.time()) - _settings()["pool_retention"])
    logger.debug("event=pool_samples_purged samples=%s", deleted)
    return deleted
