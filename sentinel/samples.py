"""The previous sample of something measured as a rate (a backend's I/O, the
host's CPU times, a probe's counters), shared by every web worker and the job
worker through Redis, so a rate never needs a sleep inside a request.

When Redis is down, each process falls back to its own memory: rates stay
right within a process and nothing fails.
"""

import json
import logging
import threading
import time

import redis

logger = logging.getLogger(__name__)

PREFIX = "sentinel:samples:"
RETRY_AFTER = 5  # seconds without trying Redis after it failed, so no request waits on it
# A sample this process stored less than this long ago (seconds) is the
# previous one for its next measures, read from memory, and it stays the
# stored sample until it is older: a client polling many times a second gets
# rates over up to a second rather than over the few milliseconds between two
# calls, and costs Redis one round trip a second, not two per call.
REUSE_FOR = 1.0


class SampleStore:
    def __init__(self, connection, ttl=3600):
        self.connection = connection
        self.ttl = ttl
        self._local = {}
        self._lock = threading.Lock()
        self._retry_at = 0.0
        # This process's own latest readings ({namespace: value}), never shared:
        # a live read measures since them rather than fetch a shared one.
        self.own = {}
        # What this process last stored: {namespace: (monotonic time, sample)}.
        self._stored = {}

    def exchange(self, namespace, current):
        """Store `current` ({key: JSON-able}) as the namespace's sample, and
        return the previous values of the keys it has ({key: value}).

        The namespace's sample is one JSON value swapped in a single round
        trip (SET ... GET), so the store holds exactly the last sample: a
        backend that ended leaves nothing behind.
        """
        if time.monotonic() < self._retry_at:
            return self._exchange_locally(namespace, current)
        value = json.dumps(current)
        try:
            raw = self.connection.set(PREFIX + namespace, value, ex=self.ttl, get=True)
        except redis.RedisError as exc:
            self._failed(exc)
            return self._exchange_locally(namespace, current)
        if not raw:
            return {}
        previous = json.loads(raw)
        return {name: previous[name] for name in current if name in previous}

    def fetch(self, namespace):
        """The namespace's previous sample, to read with `.result()` and to
        replace with `.renew(current)`.

        When this process stored it less than REUSE_FOR ago, that is it, and
        renew() keeps it. Otherwise the GET is sent to Redis now and its answer
        read on result(): the round trip overlaps whatever the caller does
        meanwhile (its SQL). Use it as a context manager, so an answer left
        unread never stays on a pooled connection."""
        stored = self._stored.get(namespace)
        if stored is not None and time.monotonic() - stored[0] < REUSE_FOR:
            return KeptSample(stored[1])
        return PendingSample(self, namespace)

    def put(self, namespace, current):
        """Store `current` as the namespace's sample without waiting for Redis:
        the SET goes behind CLIENT REPLY SKIP, so no answer comes back to read.
        A sample is best effort; a lost one only makes the next rate start
        afresh."""
        self._stored[namespace] = (time.monotonic(), current)
        value = json.dumps(current)
        conn = self._checkout()
        if conn is not None:
            commands = [
                ("CLIENT", "REPLY", "SKIP"),
                ("SET", PREFIX + namespace, value, "EX", self.ttl),
            ]
            try:
                conn.send_packed_command(conn.pack_commands(commands))
            except redis.RedisError as exc:
                self._checkin(conn, failure=exc)
            else:
                self._checkin(conn)
                return
        with self._lock:
            self._local[namespace] = dict(current)

    def _checkout(self):
        """A pooled Redis connection, or None while Redis is taken for down."""
        if time.monotonic() < self._retry_at:
            return None
        try:
            return self.connection.connection_pool.get_connection()
        except redis.RedisError as exc:
            self._failed(exc)
            return None

    def _checkin(self, conn, failure=None, unread=False):
        """Give a connection back; one that failed or holds an answer nobody
        will read is disconnected first."""
        if failure is not None or unread:
            conn.disconnect()
        self.connection.connection_pool.release(conn)
        if failure is not None:
            self._failed(failure)

    def _failed(self, exc):
        logger.warning("event=samples_fallback retry_in=%ss error=%s", RETRY_AFTER, exc)
        self._retry_at = time.monotonic() + RETRY_AFTER

    def peek(self, namespace):
        """The namespace's last sample ({key: value}), leaving it in place."""
        if time.monotonic() < self._retry_at:
            return self._peek_locally(namespace)
        try:
            raw = self.connection.get(PREFIX + namespace)
        except redis.RedisError as exc:
            self._failed(exc)
            return self._peek_locally(namespace)
        return json.loads(raw) if raw else {}

    def _peek_locally(self, namespace):
        with self._lock:
            return dict(self._local.get(namespace, {}))

    def _exchange_locally(self, namespace, current):
        with self._lock:
            previous = self._local.get(namespace, {})
            self._local[namespace] = dict(current)
        return {name: previous[name] for name in current if name in previous}


class PendingSample:
    """A GET of a namespace's sample sent to Redis, its answer read on result()."""

    def __init__(self, store, namespace):
        self.store = store
        self.namespace = namespace
        self.conn = store._checkout()
        if self.conn is not None:
            try:
                self.conn.send_command("GET", PREFIX + namespace)
            except redis.RedisError as exc:
                self._done(failure=exc)

    def result(self):
        """The namespace's sample ({key: value}), or {} when it has none."""
        if self.conn is not None:
            try:
                raw = self.conn.read_response()
            except redis.RedisError as exc:
                self._done(failure=exc)
            else:
                self._done()
                return json.loads(raw) if raw else {}
        return self.store._peek_locally(self.namespace)

    def renew(self, current):
        """Store `current` as the namespace's sample in place of this one."""
        self.store.put(self.namespace, current)

    def _done(self, failure=None, unread=False):
        if self.conn is not None:
            self.store._checkin(self.conn, failure, unread)
            self.conn = None

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        # An answer never read would be taken for the next command's.
        self._done(unread=True)


class KeptSample:
    """The sample this process stored a moment ago: no round trip, and it stays."""

    def __init__(self, sample):
        self.sample = sample

    def result(self):
        return self.sample

    def renew(self, current):
        pass  # kept until REUSE_FOR has passed

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        pass
