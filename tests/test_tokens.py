"""API tokens for programs: one check, three header styles, hashed at rest."""

import pytest

from sentinel import state
from sentinel.auth import accounts, sessions
from sentinel.auth.access import token_user
from sentinel.errors import Conflict, Unauthorized


@pytest.fixture
def token(app, make_user):
    make_user()
    with app.app_context():
        return sessions.create_token(accounts.get_user("alice"), "deploy")


@pytest.mark.parametrize(
    "header",
    [
        lambda token: {"Authorization": f"Bearer {token}"},
        lambda token: {"user-token": token},
        lambda token: {"Token": token},
        lambda token: {"token": token},
    ],
    ids=["bearer", "user-token", "Token", "lowercase token"],
)
def test_a_token_names_its_user_in_every_header_style(app, token, header):
    with app.test_request_context(headers=header(token)):
        assert token_user().username == "alice"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer snt_not-a-real-token"},
        {"Authorization": "Basic abc"},
        {"user-token": "x" * 500},
    ],
    ids=["none", "unknown", "basic auth", "oversized"],
)
def test_anything_else_is_refused(app, token, headers):
    with app.test_request_context(headers=headers), pytest.raises(Unauthorized):
        token_user()


def test_a_revoked_token_stops_working(app, token):
    with app.app_context():
        sessions.revoke_token(accounts.get_user("alice"), "deploy")
    with app.test_request_context(headers={"Token": token}), pytest.raises(Unauthorized):
        token_user()


def test_token_names_are_unique_per_user(app, token):
    with app.app_context(), pytest.raises(Conflict):
        sessions.create_token(accounts.get_user("alice"), "deploy")


def test_deleting_a_user_revokes_their_tokens_and_sessions(app, client, token, auth):
    session = auth.login(create=False)
    with app.app_context():
        accounts.delete_user("alice")
        assert state.ApiToken.select().count() == 0
    assert client.get("/profile", headers={"X-Session": session}).status_code == 401
    with app.test_request_context(headers={"Token": token}), pytest.raises(Unauthorized):
        token_user()


def test_use_is_recorded(app, token):
    with app.test_request_context(headers={"Token": token}):
        token_user()
    with app.app_context():
        assert state.ApiToken.get(name="deploy").last_used_at is not None
