"""The shared store of previous samples, on a real Redis, and without it."""

from sentinel import sandbox
from sentinel.extensions import connect_redis
from sentinel.samples import SampleStore


def test_processes_see_each_others_samples(redis_url):
    first, second = SampleStore(connect_redis(redis_url)), SampleStore(connect_redis(redis_url))
    assert first.exchange("probe", {"cpu": [1, 2]}) == {}
    assert second.exchange("probe", {"cpu": [3, 4]}) == {"cpu": [1, 2]}


def test_the_store_keeps_only_the_last_sample(redis_url):
    store = SampleStore(connect_redis(redis_url))
    store.exchange("activity", {"10": "a", "11": "b"})
    store.exchange("activity", {"11": "c"})
    # Backend 10 ended: its sample is gone and cannot match a reused pid later.
    assert store.exchange("activity", {"10": "d", "11": "e"}) == {"11": "c"}


def test_without_redis_each_process_keeps_its_own(tmp_path):
    server = sandbox.RedisServer().start()
    store = SampleStore(connect_redis(server.url))
    server.stop()
    assert store.exchange("probe", {"cpu": 1}) == {}
    assert store.exchange("probe", {"cpu": 2}) == {"cpu": 1}
