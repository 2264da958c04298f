"""Sessions: idle expiry, surviving a restart, and only hashes kept at rest."""

import datetime
import hashlib

import pytest

from sentinel import create_app, state
from sentinel.state import Session, utcnow


@pytest.fixture(params=["sqlite", "postgres"])
def state_url(request):
    return request.getfixturevalue(f"{request.param}_state")


def age_session(app, session_id, seconds_left):
    """Move a session's expiry as if time had passed."""
    digest = hashlib.sha256(session_id.encode()).hexdigest()
    with app.app_context():
        Session.update(expires_at=utcnow() + datetime.timedelta(seconds=seconds_left)).where(
            Session.token_hash == digest
        ).execute()


def test_an_idle_session_expires(app, client, auth):
    session = auth.login()
    age_session(app, session, seconds_left=-1)
    answer = client.get("/profile", headers={"X-Session": session})
    assert answer.status_code == 401
    assert answer.get_json() == {"error": "Invalid session."}


def test_using_a_session_extends_it(app, client, auth):
    session = auth.login()
    age_session(app, session, seconds_left=5)
    assert client.get("/profile", headers={"X-Session": session}).status_code == 200
    with app.app_context():
        row = Session.get(Session.token_hash == hashlib.sha256(session.encode()).hexdigest())
    remaining = (row.expires_at - utcnow()).total_seconds()
    assert remaining > 3500  # the default idle timeout is 3600 s


def test_sessions_survive_a_restart(settings, auth, client):
    session = auth.login()
    state.database.close_all()
    restarted = create_app(settings).test_client()
    answer = restarted.get("/profile", headers={"X-Session": session})
    assert answer.status_code == 200
    assert answer.get_json() == {"username": "alice"}


def test_the_idle_timeout_is_configurable(settings, make_user):
    app = create_app({**settings, "session_timeout": 120})
    client = app.test_client()
    make_user()
    session = client.post(
        "/login", json={"username": "alice", "password": "alice-password"}
    ).get_json()["session"]
    with app.app_context():
        row = Session.get(Session.token_hash == hashlib.sha256(session.encode()).hexdigest())
    assert 100 < (row.expires_at - utcnow()).total_seconds() <= 120


def test_only_hashes_of_sessions_are_stored(app, auth):
    session = auth.login()
    with app.app_context():
        stored = [row.token_hash for row in Session.select()]
    assert stored == [hashlib.sha256(session.encode()).hexdigest()]


def test_a_session_closed_through_another_host_ends_here_at_once(settings, auth, client):
    session = auth.login()
    headers = {"X-Session": session}
    # Another app in this process: it shares no memory with the first, like a
    # Sentinel on another host sharing the state database.
    other_worker = create_app(settings).test_client()
    assert other_worker.get("/profile", headers=headers).status_code == 200
    assert client.get("/logout", headers=headers).status_code == 200
    assert other_worker.get("/profile", headers=headers).status_code == 401
