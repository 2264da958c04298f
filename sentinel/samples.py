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
            logger.warning("event=samples_fallback retry_in=%ss error=%s", RETRY_AFTER, exc)
            self._retry_at = time.monotonic() + RETRY_AFTER
            return self._exchange_locally(namespace, current)
        if not raw:
            return {}
        previous = json.loads(raw)
        return {name: previous[name] for name in current if name in previous}

    def peek(self, namespace):
        """The namespace's last sample ({key: value}), leaving it in place."""
        if time.monotonic() < self._retry_at:
            return self._peek_locally(namespace)
        try:
            raw = self.connection.get(PREFIX + namespace)
        except redis.RedisError as exc:
            logger.warning("event=samples_fallback retry_in=%ss error=%s", RETRY_AFTER, exc)
            self._retry_at = time.monotonic() + RETRY_AFTER
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
