"""The previous sample of something measured as a rate (a backend's I/O, the
host's CPU times, a probe's counters), shared by every web worker and the job
worker through Redis, so a rate never needs a sleep inside a request.

A sample is a JSON object with `at`, the epoch seconds it was taken. Its key
names what it measures and where: the instance or the host (several Sentinels,
and later many pool sources, share one Redis), and who keeps it as a
baseline (a route and the periodic collector keep their own, so one never
shortens the other's interval).

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


def key(*parts):
    """The key of a sample: key("db1.example:5432", "probe", "xacts", "api")."""
    return ":".join(str(part) for part in parts)


class SampleStore:
    def __init__(self, connection, ttl=3600):
        self.connection = connection
        self.ttl = ttl
        self._local = {}
        self._lock = threading.Lock()
        self._retry_at = 0.0

    def get(self, name):
        """The sample stored under `name`, or None."""
        if self._redis_usable():
            try:
                raw = self.connection.get(PREFIX + name)
            except redis.RedisError as exc:
                self._failed(exc)
            else:
                self._succeeded()
                return json.loads(raw) if raw else None
        with self._lock:
            return self._local.get(name)

    def put(self, name, current, replacing=None, keep_for=0.0):
        """Store the sample `current` under `name`, in place of `replacing` (the
        one get() gave) unless that one is less than `keep_for` seconds older:
        it then stays the baseline, so a client polling many times a second
        gets rates over up to `keep_for` seconds, not over the few
        milliseconds between two calls."""
        if replacing is not None and current["at"] - replacing.get("at", 0) < keep_for:
            return
        if self._redis_usable():
            try:
                self.connection.set(PREFIX + name, json.dumps(current), ex=self.ttl)
            except redis.RedisError as exc:
                self._failed(exc)
            else:
                self._succeeded()
                return
        with self._lock:
            self._local[name] = current

    def swap(self, name, current):
        """put() `current` under `name` and return the sample it replaces (or
        None), in one round trip: for samples always replaced, such as the
        probes'."""
        if self._redis_usable():
            try:
                raw = self.connection.set(PREFIX + name, json.dumps(current), ex=self.ttl, get=True)
            except redis.RedisError as exc:
                self._failed(exc)
            else:
                self._succeeded()
                return json.loads(raw) if raw else None
        with self._lock:
            previous, self._local[name] = self._local.get(name), current
        return previous

    def _redis_usable(self):
        return time.monotonic() >= self._retry_at

    def _failed(self, exc):
        if not self._retry_at:
            logger.warning("event=redis_unavailable process=web samples=local error=%s", exc)
        self._retry_at = time.monotonic() + RETRY_AFTER

    def _succeeded(self):
        if self._retry_at:
            logger.info("event=redis_back process=web")
            self._retry_at = 0.0
