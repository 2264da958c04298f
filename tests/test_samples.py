"""The shared store of previous samples, on a real Redis, and without it."""

from sentinel.dev import sandbox
from sentinel.extensions import connect_redis
from sentinel.samples import PREFIX, SampleStore


def test_processes_see_each_others_samples(redis_url):
    first, second = SampleStore(connect_redis(redis_url)), SampleStore(connect_redis(redis_url))
    assert first.get("probe") is None
    first.put("probe", {"at": 1.0, "cpu": [1, 2]})
    assert second.get("probe") == {"at": 1.0, "cpu": [1, 2]}


def test_the_store_keeps_only_the_last_sample(redis_url):
    store = SampleStore(connect_redis(redis_url))
    store.put("activity", {"at": 1.0, "backends": {"10": "a", "11": "b"}})
    store.put("activity", {"at": 2.0, "backends": {"11": "c"}})
    # Backend 10 ended: its reading is gone and cannot match a reused pid later.
    assert store.get("activity") == {"at": 2.0, "backends": {"11": "c"}}


def test_samples_expire(redis_url):
    store = SampleStore(connect_redis(redis_url), ttl=60)
    store.put("probe", {"at": 1.0})
    assert 0 < store.connection.ttl(PREFIX + "probe") <= 60


def test_without_redis_each_process_keeps_its_own():
    server = sandbox.RedisServer().start()
    store = SampleStore(connect_redis(server.url))
    server.stop()
    assert store.get("probe") is None
    store.put("probe", {"at": 1.0, "cpu": 1})
    assert store.get("probe") == {"at": 1.0, "cpu": 1}


def test_a_young_sample_stays_the_baseline(redis_url):
    ours, other = SampleStore(connect_redis(redis_url)), SampleStore(connect_redis(redis_url))
    first = {"at": 100.0, "cpu": 1}
    ours.put("kept", first)
    # Half a second later: the stored sample stays, so the next rate is
    # measured over a longer interval than the few ms between two calls.
    previous = other.get("kept")
    other.put("kept", {"at": 100.5, "cpu": 2}, replacing=previous, keep_for=1.0)
    assert ours.get("kept") == first
    # A second later it is replaced.
    other.put("kept", {"at": 101.0, "cpu": 3}, replacing=previous, keep_for=1.0)
    assert ours.get("kept") == {"at": 101.0, "cpu": 3}


def test_a_young_sample_stays_the_baseline_without_redis_too():
    server = sandbox.RedisServer().start()
    store = SampleStore(connect_redis(server.url))
    server.stop()
    store.put("kept", {"at": 100.0})
    store.put("kept", {"at": 100.2}, replacing=store.get("kept"), keep_for=1.0)
    assert store.get("kept") == {"at": 100.0}
