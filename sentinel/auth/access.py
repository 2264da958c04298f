"""Request authentication: X-Session (or the agent key where allowed) for the
API, the signed-in cookie for the web UI."""

import functools
import hmac

from flask import current_app, g, request
from flask_login import current_user, login_required

from ..contract import marks
from ..errors import Forbidden, Unauthorized
from . import accounts, sessions

KEY_HEADER = "X-TemBoard-Agent-Key"


def settings():
    return current_app.config["SENTINEL"]


def presented_key():
    return request.headers.get(KEY_HEADER) or request.args.get("key")


def check_agent_key(key):
    """A key was presented: it must be the configured one (401 otherwise)."""
    expected = settings()["agent_key"]
    if not expected or not hmac.compare_digest(key.encode(), expected.encode()):
        raise Unauthorized("Invalid key")


def _bearer():
    values = request.headers.getlist("Authorization")
    if len(values) != 1:  # none, or several: which one would be meant?
        return None
    scheme, _, value = values[0].partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


# Where each pool dialect's clients send their token (header names in any case).
TOKEN_PLACES = {
    "bearer": _bearer,
    "user-token": lambda: request.headers.get("user-token"),
    "token": lambda: request.headers.get("Token") or request.args.get("Token"),
}


def presented_token(scheme=None):
    """The token the request carries where `scheme`'s clients send it, or
    from any of those places when scheme is None."""
    places = [TOKEN_PLACES[scheme]] if scheme else TOKEN_PLACES.values()
    return next((token for token in (place() for place in places) if token), None)


def token_user(scheme=None):
    """Who the request's token belongs to (`.username`, `.role`), or
    Unauthorized. The token is an API token (`sentinel tokens create`), or a
    live API session id: what the dialects' own login routes hand out."""
    raw = presented_token(scheme)
    if isinstance(raw, str) and sessions.SESSION_RE.fullmatch(raw):
        return sessions.resolve(raw, settings()["session_timeout"])
    return sessions.authenticate_token(raw)


def client_address():
    return request.remote_addr or "unknown"


def require_admin(role):
    """The one check every route that changes something makes: viewers read only."""
    if role != accounts.ADMIN:
        raise Forbidden("This needs the admin role: a viewer can read but change nothing.")


def passwords_shown(asked):
    """Whether an answer shows passwords in clear: when asked, and only to an
    admin (403 for a viewer, who could otherwise log in where Sentinel does)."""
    if asked:
        require_admin(g.role)
    return bool(asked)


def session_required(view=None, *, key=False, admin=False):
    """Reject the request unless it carries a live session; with admin=True,
    unless its user is an admin (403).

    With key=True (the read-only routes), a presented agent key replaces the
    session: the right key is enough, a wrong one is refused even with a session.
    """
    if key and admin:
        raise ValueError("the agent key opens read-only routes only")

    def decorator(view):
        @functools.wraps(view)
        @marks(auth="session-or-key" if key else "session", role=accounts.ADMIN if admin else None)
        def wrapper(*args, **kwargs):
            presented = presented_key() if key else None
            if presented is not None:
                check_agent_key(presented)
                g.session_id, g.username, g.role = None, None, accounts.VIEWER
            else:
                raw = request.headers.get("X-Session")
                session = sessions.resolve(raw, settings()["session_timeout"])
                g.session_id, g.username, g.role = raw, session.username, session.role
            if admin:
                require_admin(g.role)
            return view(*args, **kwargs)

        return wrapper

    return decorator(view) if view is not None else decorator


def token_required(view=None, *, scheme, admin=False):
    """A pool dialect's route: reject the request unless it carries a token
    where that dialect's clients put it (`bearer`, `user-token` or `token`);
    with admin=True, unless the token's user is an admin (403)."""

    def decorator(view):
        @functools.wraps(view)
        @marks(auth=scheme, role=accounts.ADMIN if admin else None)
        def wrapper(*args, **kwargs):
            user = token_user(scheme)
            g.session_id, g.username, g.role = None, user.username, user.role
            if admin:
                require_admin(g.role)
            return view(*args, **kwargs)

        return wrapper

    return decorator(view) if view is not None else decorator


def signed_in(view=None, *, admin=False):
    """A web UI route: the browser must be signed in (else to the sign-in page);
    with admin=True, as an admin (403 otherwise)."""

    def decorator(view):
        @functools.wraps(view)
        @marks(auth="cookie", role=accounts.ADMIN if admin else None)
        @login_required
        def wrapper(*args, **kwargs):
            if admin:
                require_admin(current_user.role)
            return view(*args, **kwargs)

        return wrapper

    return decorator(view) if view is not None else decorator
