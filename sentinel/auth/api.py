"""The API's sign-in routes: POST /login, GET /logout, GET /profile."""

from flask import Blueprint, g, jsonify

from ..contract import STRING, describe, record
from ..core import notifications
from ..errors import Malformed
from . import accounts, sessions
from .access import client_address, session_required, settings

blueprint = Blueprint("auth", __name__)

CREDENTIALS = record(
    username={"type": "string", "pattern": f"^{accounts.USERNAME_RE.pattern}$"},
    password={
        "type": "string",
        "minLength": accounts.MIN_PASSWORD,
        "maxLength": accounts.MAX_PASSWORD,
    },
)
SESSION = {"type": "string", "pattern": "^[0-9a-f]{64}$"}


@blueprint.post("/login")
@describe(
    "Sign in: a new session id for X-Session",
    body=CREDENTIALS,
    absent=Malformed,
    answers={200: record(session=SESSION)},
    errors=(404, 429, 503),
    description="Wrong credentials are 404 `Invalid username/password.`; other sessions"
    " of the user stay open.",
)
def login(body):
    user = accounts.authenticate(body["username"], body["password"], client_address(), settings())
    session_id = sessions.open_session(user, client_address(), settings()["session_timeout"])
    notifications.record(user.username, "Login")
    return jsonify(session=session_id)


@blueprint.get("/logout")
@session_required
@describe("Close the session", answers={200: record(logout={"const": True})})
def logout():
    sessions.close_session(g.session_id)
    notifications.record(g.username, "Logout")
    return jsonify(logout=True)


@blueprint.get("/profile")
@session_required
@describe("Who the session belongs to", answers={200: record(username=STRING)})
def profile():
    return jsonify(username=g.username)
