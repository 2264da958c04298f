"""Administration: control the instance through pg_ctl, for real."""

import fcntl
from pathlib import Path

import pytest

from sentinel import create_app


@pytest.fixture
def controlled(own_cluster, settings):
    """An app whose managed instance is the test's own cluster, with pg_ctl."""
    app = create_app(
        {**settings, "pg_dsn": own_cluster.dsn(), "pg_ctl": own_cluster.pg_ctl_command()}
    )
    yield app
    app.extensions["sentinel.postgres"].close()


@pytest.fixture
def headers(controlled, make_user):
    make_user()
    client = controlled.test_client()
    answer = client.post("/login", json={"username": "alice", "password": "alice-password"})
    return {"X-Session": answer.get_json()["session"]}


def control(app, headers, action):
    return app.test_client().post(
        "/administration/control", json={"action": action}, headers=headers
    )


def messages(app, headers):
    return [
        item["message"] for item in app.test_client().get("/notifications", headers=headers).json
    ]


def postmaster_start(cluster):
    return cluster.execute("SELECT pg_postmaster_start_time()")[0][0]


def test_reload_is_ok_and_recorded(controlled, headers):
    answer = control(controlled, headers, "reload")
    assert answer.status_code == 200
    assert answer.get_json() == {"action": "reload", "state": "ok"}
    assert messages(controlled, headers)[0] == "PostgreSQL reload"


def test_stop_then_start(controlled, headers, own_cluster):
    assert control(controlled, headers, "stop").get_json() == {"action": "stop", "state": "ok"}
    assert not own_cluster.is_running()
    assert (
        controlled.test_client().get("/administration/pg_version", headers=headers).status_code
        == 503
    )

    assert control(controlled, headers, "start").get_json() == {"action": "start", "state": "ok"}
    assert own_cluster.is_running()
    # start waited until PostgreSQL accepts connections: the next call works.
    version = controlled.test_client().get("/administration/pg_version", headers=headers)
    assert version.status_code == 200
    assert messages(controlled, headers)[:2] == ["PostgreSQL start", "PostgreSQL stop"]


def test_restart_brings_a_new_postmaster_and_pooled_connections_heal(
    controlled, headers, own_cluster
):
    client = controlled.test_client()
    assert client.get("/administration/pg_version", headers=headers).status_code == 200
    before = postmaster_start(own_cluster)
    assert control(controlled, headers, "restart").get_json()["state"] == "ok"
    assert postmaster_start(own_cluster) > before
    assert client.get("/administration/pg_version", headers=headers).status_code == 200


def test_a_failing_pg_ctl_is_ko_with_the_reason_recorded(controlled, headers):
    answer = control(controlled, headers, "start")  # already running
    assert answer.status_code == 200
    assert answer.get_json() == {"action": "start", "state": "ko"}
    latest = messages(controlled, headers)[0]
    assert latest.startswith("PostgreSQL start failed: ")
    assert "could not start server" in latest


def test_without_pg_ctl_configured_start_is_ko(settings, own_cluster, auth, make_user):
    app = create_app({**settings, "pg_dsn": own_cluster.dsn()})
    answer = control(app, auth.headers(), "restart")
    assert answer.get_json() == {"action": "restart", "state": "ko"}
    assert messages(app, auth.headers(create=False))[1] == (
        "PostgreSQL restart failed: SENTINEL_PG_CTL is not set"
    )


def test_a_start_that_never_comes_up_gives_up_in_time(settings, own_cluster, auth):
    own_cluster.stop()
    app = create_app(
        {**settings, "pg_dsn": own_cluster.dsn(), "pg_ctl": "true {action}", "pg_ctl_timeout": 2}
    )
    answer = control(app, auth.headers(), "start")
    assert answer.get_json() == {"action": "start", "state": "ko"}
    assert messages(app, auth.headers(create=False))[1] == (
        "PostgreSQL start failed: PostgreSQL did not accept connections within 2 s"
    )


@pytest.mark.parametrize(
    "body, error",
    [
        ({"action": "bogus"}, "Parameter 'action' is malformed."),
        ({"action": "RELOAD"}, "Parameter 'action' is malformed."),
        ({"action": ["reload"]}, "Parameter 'action' is malformed."),
        ({}, "Parameter 'action' not sent."),
        (["reload"], "Parameter 'action' is malformed."),
    ],
)
def test_bad_actions_are_406_and_change_nothing(controlled, headers, body, error):
    answer = controlled.test_client().post("/administration/control", json=body, headers=headers)
    assert answer.status_code == 406
    assert answer.get_json() == {"error": error}
    assert messages(controlled, headers) == ["Login"]


def test_control_needs_a_session_not_the_key(settings):
    app = create_app({**settings, "agent_key": "the-key"})
    answer = app.test_client().post(
        "/administration/control?key=the-key", json={"action": "reload"}
    )
    assert answer.status_code == 406
    assert answer.get_json() == {"error": "Parameter 'X-Session' is malformed."}


def test_one_control_action_at_a_time(controlled, headers):
    lock_path = Path(controlled.config["SENTINEL"]["state_dir"]) / "control.lock"
    with open(lock_path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        answer = control(controlled, headers, "reload")
    assert answer.status_code == 409
    assert answer.get_json() == {"error": "Another control action is running."}


def test_pg_version_as_the_agent_serves_it(client, auth, pg_cluster):
    answer = client.get("/administration/pg_version", headers=auth.headers())
    version = answer.get_json()
    assert set(version) == {"numeric", "full"}
    expected = int(pg_cluster.execute("SHOW server_version_num")[0][0])
    assert version["numeric"] == expected
    assert version["full"].startswith("PostgreSQL 15.")


def test_a_pg_ctl_template_without_action_is_a_config_error(settings):
    from sentinel.config import ConfigError

    with pytest.raises(ConfigError, match="SENTINEL_PG_CTL: must contain {action}"):
        create_app({**settings, "pg_ctl": "/usr/bin/pg_ctl restart"})
