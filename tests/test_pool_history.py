"""What collection keeps: a run is written once whatever retries it, the last
sample never goes back in time, and retention deletes old runs only; on
SQLite and PostgreSQL state alike."""

import pytest

from sentinel.pool import history, store


@pytest.fixture(params=["sqlite", "postgres"])
def state_url(request):
    return request.getfixturevalue(f"{request.param}_state")


@pytest.fixture
def source_id(app):
    with app.app_context():
        yield store.create({"name": "sales", "host": "127.0.0.1", "user": "u"})["id"]


def test_a_run_written_twice_is_kept_once(app, source_id):
    rows = {"kpi": [{"backends": 3}], "db_stats": [{"datname": "x", "xact_commit": 10}]}
    with app.app_context():
        assert history.record(source_id, "postgres", 60, 61.5, rows) == 2
        assert history.record(source_id, "postgres", 60, 62.0, {"kpi": [{"backends": 9}]}) == 0
        assert history.series(source_id, "postgres", "kpi", 0, 100) == [
            (60, 61.5, [{"backends": 3}])
        ]


def test_the_latest_sample_never_goes_back_to_an_older_run(app, source_id):
    with app.app_context():
        history.record(source_id, "postgres", 120, 121.0, {"kpi": [{"backends": 5}]})
        history.record(source_id, "postgres", 60, 125.0, {"kpi": [{"backends": 1}]})
        [(sid, dbname, metric, slot, _, data)] = history.latest()
        assert (sid, dbname, metric, slot, data) == (
            source_id,
            "postgres",
            "kpi",
            120,
            '[{"backends":5}]',
        )
        assert history.metrics_of(source_id) == {"postgres": ["kpi"]}


def test_retention_deletes_old_runs_and_keeps_the_latest(app, source_id):
    with app.app_context():
        for slot in (60, 120, 180):
            history.record(source_id, "postgres", slot, slot + 1.0, {"kpi": [{"backends": slot}]})
        assert history.purge(before=130) == 2
        assert [slot for slot, _, _ in history.series(source_id, "postgres", "kpi", 0, 999)] == [
            180
        ]
        assert len(history.latest()) == 1


def test_deleting_a_source_deletes_its_samples(app, source_id):
    with app.app_context():
        history.record(source_id, "postgres", 60, 61.0, {"kpi": [{"backends": 1}]})
        store.delete(source_id)
        assert history.latest() == []
        assert history.series(source_id, "postgres", "kpi", 0, 999) == []
