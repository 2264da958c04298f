"""The connections a worker process keeps open to the pool's sources between
runs, and the Redis records that keep them at most two per (source, dbname).

Each worker process has a name of its own (`identity`) and a queue of its own
(`queue_name`), which it works before the shared one. The worker that keeps a
(source, dbname)'s connection open after a run is its *holder*, written in
the HOLDERS hash; the dispatcher sends that (source, dbname)'s runs to the
holder's own queue while the holder is alive (its ALIVE key, refreshed every
REFRESH_EVERY s, expires after ALIVE_TTL s) and not backed up. Any other
worker that runs it (the holder busy, dead, or the run sent to the shared
queue) opens a connection of its own and closes it after the run, unless the
holder is gone, in which case it becomes the holder. Runs of one (source,
dbname) never overlap (collect's run lock), so at most the holder's idle
connection and the one in use are open: two.
"""

import collections
import hashlib
import logging
import os
import re
import threading
import time
import uuid

import orjson
import redis
from rq import Queue

logger = logging.getLogger(__name__)

HOLDERS = "sentinel:pool:holders"  # hash "<source id>/<dbname>" -> worker identity
ALIVE = "sentinel:pool:alive:"  # + worker identity, set while it runs
ALIVE_TTL = 30  # s: a killed worker's sources go back to the shared queue after this
REFRESH_EVERY = 10  # s
IDLE_CLOSE = 900  # s a cached connection may stay unused before it is closed
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
MAX_OPEN = 2000  # cached connections per worker process, least recently used closed first

# Claims a (source, dbname) for this worker, unless a live worker holds it.
CLAIM = """
local holder = redis.call('hget', KEYS[1], ARGV[1])
if holder == ARGV[2] then return 1 end
if holder and redis.call('exists', ARGV[3] .. holder) == 1 then return 0 end
redis.call('hset', KEYS[1], ARGV[1], ARGV[2])
return 1
"""
# A run's end, in one round trip: its lock released if still its own, this
# worker no longer busy, and (ARGV[3] not empty) the (source, dbname) claimed
# as CLAIM does. KEYS: lock, busy hash, holders; ARGV: lock token, worker,
# "<source id>/<dbname>" or "", ALIVE.
FINISH = """
if redis.call('get', KEYS[1]) == ARGV[1] then redis.call('del', KEYS[1]) end
redis.call('hdel', KEYS[2], ARGV[2])
if ARGV[3] == '' then return 0 end
local holder = redis.call('hget', KEYS[3], ARGV[3])
if holder == ARGV[2] then return 1 end
if holder and redis.call('exists', ARGV[4] .. holder) == 1 then return 0 end
redis.call('hset', KEYS[3], ARGV[3], ARGV[2])
return 1
"""
# Forgets a (source, dbname)'s holder if it still is this worker.
RELEASE = """
if redis.call('hget', KEYS[1], ARGV[1]) == ARGV[2] then
  return redis.call('hdel', KEYS[1], ARGV[1])
end
return 0
"""

identity = None  # this worker process's name, set by start(); None outside a worker


def queue_name(worker):
    """The queue a worker works before the shared one."""
    return f"sentinel:{worker}"


def key(source_id, dbname):
    return f"{source_id}/{dbname}"


def fingerprint(params):
    """A digest of a source's libpq keywords: a cached connection made with
    other ones (the source was changed) is not reused. The password goes into
    the digest only."""
    return hashlib.sha256(orjson.dumps(params, option=orjson.OPT_SORT_KEYS)).hexdigest()


class Cached:
    """One open connection and what the collection learnt about its server."""

    __slots__ = (
        "connection",
        "fingerprint",
        "used_at",
        "major",
        "standby",
        "met",
        "checked_at",
        "together_after",
    )

    def __init__(self, connection, fingerprint):
        self.connection = connection
        self.fingerprint = fingerprint
        self.used_at = time.monotonic()
        self.major = connection.server_version // 10000
        self.standby = None  # pg_is_in_recovery() as last seen
        self.met = set()  # "extension:<name>", "role:<name>" the collection may rely on
        self.checked_at = float("-inf")  # when those were last read
        self.together_after = float("-inf")  # metrics run in one query from then on

    def close(self):
        try:
            self.connection.close()
        except Exception:  # noqa: BLE001 - closing a broken connection: nothing left to do
            pass


class Cache:
    """This process's idle connections by (source id, dbname): a run takes
    one out while it uses it and gives it back after, so the reaper thread
    only ever closes idle ones."""

    def __init__(self):
        self.lock = threading.Lock()
        self.idle = collections.OrderedDict()

    def take(self, source_id, dbname, fingerprint):
        """The open connection cached for (source, dbname) with those
        parameters, or None; one made with other parameters is closed."""
        with self.lock:
            cached = self.idle.pop(key(source_id, dbname), None)
        if cached is None:
            return None
        if cached.fingerprint != fingerprint or cached.connection.closed:
            cached.close()
            return None
        return cached

    def give_back(self, source_id, dbname, cached, connection):
        """Keep `cached` open for the next run if this worker holds (or may
        now hold) the (source, dbname); close it otherwise."""
        name = key(source_id, dbname)
        if identity is None or cached.connection.closed or not _claim(connection, name):
            cached.close()
            return
        self.keep(source_id, dbname, cached, connection)

    def keep(self, source_id, dbname, cached, connection):
        """Keep `cached` open for the next run: this worker holds its (source,
        dbname), as claimed by the caller."""
        name = key(source_id, dbname)
        if cached.connection.closed:
            return
        cached.used_at = time.monotonic()
        with self.lock:
            self.idle[name] = cached
            overflow = len(self.idle) - MAX_OPEN
            evicted = [self.idle.popitem(last=False) for _ in range(max(0, overflow))]
        for evicted_name, old in evicted:
            old.close()
            _release(connection, evicted_name)

    def drop(self, source_id, dbname, connection=None):
        """Close the cached connection of a (source, dbname), if any."""
        name = key(source_id, dbname)
        with self.lock:
            cached = self.idle.pop(name, None)
        if cached is not None:
            cached.close()
        if connection is not None and identity is not None:
            _release(connection, name)

    def reap(self, connection, idle_for=IDLE_CLOSE):
        """Close the connections unused for `idle_for` seconds, and those
        whose holder record no longer names this worker (the dispatcher
        forgets the holder of a source disabled or deleted)."""
        with self.lock:
            names = list(self.idle)
        if not names:
            return 0
        holders = connection.hmget(HOLDERS, names)
        limit = time.monotonic() - idle_for
        closed = []
        with self.lock:
            for name, holder in zip(names, holders, strict=True):
                cached = self.idle.get(name)
                if cached is None:
                    continue
                if cached.used_at < limit or holder is None or holder.decode() != identity:
                    closed.append((name, self.idle.pop(name)))
        for name, cached in closed:
            cached.close()
            _release(connection, name)
        return len(closed)

    def close_all(self, connection=None):
        with self.lock:
            closing = list(self.idle.items())
            self.idle.clear()
        for name, cached in closing:
            cached.close()
            if connection is not None and identity is not None:
                _release(connection, name)

    def __len__(self):
        return len(self.idle)


cache = Cache()


def _claim(connection, name):
    return bool(connection.eval(CLAIM, 1, HOLDERS, name, identity, ALIVE))


def _release(connection, name):
    try:
        connection.eval(RELEASE, 1, HOLDERS, name, identity)
    except redis.RedisError:
        pass  # the record outlives this worker by ALIVE_TTL at most


def start(connection):
    """In a worker process, before it works: take a name, then in a thread
    of its own say it is alive every REFRESH_EVERY seconds and close idle
    connections. Returns a function that stops it, closing every cached
    connection and saying this worker is gone."""
    global identity
    identity = f"{os.uname().nodename}.{os.getpid()}.{uuid.uuid4().hex[:6]}"
    event = threading.Event()
    thread = threading.Thread(target=_serve, args=(connection, event), daemon=True)
    thread.start()

    def stop():
        event.set()
        thread.join(5)

    return stop


def _serve(connection, stop):
    alive = ALIVE + identity
    while True:
        try:
            connection.set(alive, os.getpid(), ex=ALIVE_TTL)
            cache.reap(connection)
        except redis.RedisError as exc:
            logger.debug("event=pool_refresh_failed error=%s", exc)
        if stop.wait(REFRESH_EVERY):
            break
    cache.close_all(connection)
    try:
        connection.delete(alive)
    except redis.RedisError:
        pass


def live_workers(connection, workers):
    """{worker: waiting jobs on its own queue} of those of `workers` alive."""
    workers = sorted(workers)
    if not workers:
        return {}
    pipe = connection.pipeline(transaction=False)
    for worker in workers:
        pipe.exists(ALIVE + worker)
        pipe.llen(Queue.redis_queue_namespace_prefix + queue_name(worker))
    answers = pipe.execute()
    return {
        worker: answers[2 * index + 1] for index, worker in enumerate(workers) if answers[2 * index]
    }
