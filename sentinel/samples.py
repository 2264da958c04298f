"""The previous sample of something measured as a rate (a backend's I/O, the
host's CPU times, a probe's counters), shared by every web worker and the job
worker through Redis, so a rate never needs a sleep inside a request.

When Redis is down, each process falls back to its own memory: rates stay
right within a process and nothing fails.
"""

import json
import logging
import threading

import redis

logger = logging.getLogger(__name__)

PREFIX = "sentinel:samples:"


class SampleStore:
    def __init__(self, connection, ttl=3600):
        self.connection = connection
        self.ttl = ttl
        self._local = {}
        self._lock = threading.Lock()

    def exchange(self, namespace, current):
        """Store `current` ({key: JSON-able}) as the namespace's sample, and
        return the previous values of the keys it has ({key: value}).

        Keys absent from `current` are dropped, so the store holds exactly the
        last sample (a backend that ended leaves nothing behind).
        """
        key = PREFIX + namespace
        names = list(current)
        try:
            with self.connection.pipeline(transaction=True) as pipe:
                if names:
                    pipe.hmget(key, names)
                pipe.delete(key)
                if names:
                    pipe.hset(key, mapping={n: json.dumps(v) for n, v in current.items()})
                    pipe.expire(key, self.ttl)
                results = pipe.execute()
        except redis.RedisError as exc:
            logger.warning("event=samples_fallback namespace=%s error=%s", namespace, exc)
            return self._exchange_locally(namespace, current)
        if not names:
            return {}
        return {name: json.loads(raw) for name, raw in zip(names, results[0], strict=True) if raw}

    def _exchange_locally(self, namespace, current):
        with self._lock:
            previous = self._local.get(namespace, {})
            self._local[namespace] = dict(current)
        return {name: previous[name] for name in current if name in previous}
