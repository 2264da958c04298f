"""The shared store of previous samples, on a real Redis, and without it."""

import time

import pytest

from sentinel import samples as samples_module
from sentinel import sandbox
from sentinel.extensions import connect_redis
from sentinel.samples import PREFIX, SampleStore


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


def test_a_fetched_sample_is_the_one_another_process_put(redis_url):
    first, second = SampleStore(connect_redis(redis_url)), SampleStore(connect_redis(redis_url))
    with first.fetch("rates") as pending:
        assert pending.result() == {}
    first.put("rates", {"10": [1, 2]})
    with second.fetch("rates") as pending:
        assert pending.result() == {"10": [1, 2]}
    # The SET went without an answer to read: the connection is clean, and the
    # sample expires like any other.
    assert second.connection.ttl(PREFIX + "rates") > 0
    assert second.exchange("rates", {"10": [3, 4]}) == {"10": [1, 2]}


def test_a_fetch_left_unread_never_answers_a_later_command(redis_url):
    store = SampleStore(connect_redis(redis_url))
    store.put("left", {"a": 1})
    store.put("other", {"b": 2})
    with pytest.raises(RuntimeError):
        with store.fetch("left"):
            raise RuntimeError("the SQL failed")
    assert store.exchange("other", {"b": 3}) == {"b": 2}
    assert store.connection.get(PREFIX + "left") is not None


def test_fetch_and_put_without_redis_keep_the_sample_locally():
    server = sandbox.RedisServer().start()
    store = SampleStore(connect_redis(server.url))
    server.stop()
    with store.fetch("probe") as pending:
        assert pending.result() == {}
    store.put("probe", {"cpu": 1})
    with store.fetch("probe") as pending:
        assert pending.result() == {"cpu": 1}


def test_a_sample_stored_a_moment_ago_stays_the_previous_one(redis_url, monkeypatch):
    monkeypatch.setattr(samples_module, "REUSE_FOR", 0.5)
    ours, other = SampleStore(connect_redis(redis_url)), SampleStore(connect_redis(redis_url))
    with ours.fetch("kept") as pending:
        pending.renew({"10": [1]})
    other.put("kept", {"10": [2]})
    # Within REUSE_FOR this process measures from its own sample, and keeps it.
    with ours.fetch("kept") as pending:
        assert pending.result() == {"10": [1]}
        pending.renew({"10": [3]})
    assert other.exchange("kept", {"10": [4]}) == {"10": [2]}
    time.sleep(0.6)
    # Later it fetches the shared sample again, and stores its own.
    with ours.fetch("kept") as pending:
        assert pending.result() == {"10": [4]}
        pending.renew({"10": [5]})
    with other.fetch("kept") as pending:
        assert pending.result() == {"10": [5]}
