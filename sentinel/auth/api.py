"""The API's sign-in routes: POST /login, GET /logout, GET /profile.

POST /login speaks two dialects: temBoard's `{"username", "password"}`
answered `{"session": ...}`, and pgwatch's `{"user", "password"}` answered
the session id as plain text (its clients send it back in a `Token` header).
"""

from flask import Blueprint, Response, g, jsonify

from ..answers import error_body, json_error
from ..contract import ERROR, JSON, STRING, describe, record
from ..core import notifications
from ..errors import Malformed, NotFound, Unauthorized
from . import accounts, sessions
from .access import client_address, session_required, settings

blueprint = Blueprint("auth", __name__)
PLAIN = "text/plain"


def _error(status, message, error):
    # A pgwatch client reads its failures as plain text.
    if g.get("pgwatch_login"):
        return Response(message, status=status, mimetype=PLAIN)
    return json_error(status, message, error)


error_body(blueprint, _error)

PASSWORD = {
    "type": "string",
    "minLength": accounts.MIN_PASSWORD,
    "maxLength": accounts.MAX_PASSWORD,
}
# Either shape, told apart by `user`. Written as if/then/else rather than
# anyOf so that a refused temBoard body still names the parameter at fault.
CREDENTIALS = {
    "type": "object",
    "properties": {
        "username": {"type": "string", "pattern": f"^{accounts.USERNAME_RE.pattern}$"},
        "password": PASSWORD,
        "user": STRING,
    },
    "if": {"type": "object", "required": ["user"]},
    "then": {"description": "pgwatch's login", "required": ["user", "password"]},
    "else": {"description": "temBoard's login", "required": ["username", "password"]},
}
SESSION = {"type": "string", "pattern": "^[0-9a-f]{64}$"}


@blueprint.post("/login")
@describe(
    "Sign in: a new session id, for X-Session (temBoard) or Token (pgwatch)",
    body=CREDENTIALS,
    absent=Malformed,
    answers={200: [(JSON, record(session=SESSION)), (PLAIN, SESSION)]},
    errors=(401, 404, 429, 503),
    error={JSON: ERROR, PLAIN: STRING},
    description='temBoard\'s body `{"username", "password"}` is answered 200'
    ' application/json `{"session": ...}`, wrong credentials 404 `Invalid'
    ' username/password.`. pgwatch\'s `{"user", "password"}` is answered 200'
    " text/plain with the session id alone, wrong credentials 401 in plain text, as"
    " are its other failures past the body's check. Other sessions of the user stay open.",
)
def login(body):
    if "user" in body:
        return _pgwatch_login(body["user"], body["password"])
    user = accounts.authenticate(body["username"], body["password"], client_address(), settings())
    return jsonify(session=_open_session(user))


def _pgwatch_login(username, password):
    g.pgwatch_login = True
    try:
        user = accounts.authenticate(username, password, client_address(), settings())
    except (NotFound, Malformed):
        raise Unauthorized("Invalid user or password.") from None
    return Response(_open_session(user), mimetype=PLAIN)


def _open_session(user):
    session_id = sessions.open_session(user, client_address(), settings()["session_timeout"])
    notifications.record(user.username, "Login")
    return session_id


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
