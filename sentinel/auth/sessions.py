"""Sessions and API tokens. Only SHA-256 hashes of them are stored.

Both are 256-bit random values, so a plain hash is enough: a copy of the state
database gives no usable credential, and lookups stay one indexed read.

The web UI's sign-ins are sessions of their own: the browser's cookie is
signed but readable, so it holds a reference hashed under another prefix,
which no X-Session can ever match (and no API session opens the UI).
"""

import datetime
import hashlib
import re
import secrets
from typing import NamedTuple

import peewee

from ..errors import Conflict, Malformed, NotFound, Unauthorized
from ..state import ApiToken, Session, User, database, utcnow

SESSION_RE = re.compile(r"[0-9a-f]{64}")
TOKEN_PREFIX = "snt_"
UI_PREFIX = "ui:"
# An idle timeout is extended at most once a minute, so that reads stay reads.
REFRESH_EVERY = datetime.timedelta(seconds=60)
TOKEN_USE_RECORDED_EVERY = datetime.timedelta(seconds=60)


def digest(raw):
    return hashlib.sha256(raw.encode()).hexdigest()


def ui_digest(reference):
    return digest(UI_PREFIX + reference)


def _create(user, client, timeout, token_hash):
    Session.create(
        token_hash=token_hash,
        user=user,
        expires_at=utcnow() + datetime.timedelta(seconds=timeout),
        client=(client or "")[:64],
    )


def open_session(user, client, timeout):
    """Create an API session for `user`; returns its id, which is shown only now."""
    raw = secrets.token_hex(32)
    _create(user, client, timeout, digest(raw))
    return raw


def open_ui_session(user, client, timeout):
    """Create a web UI sign-in for `user`; returns the reference its cookie keeps."""
    reference = secrets.token_hex(32)
    _create(user, client, timeout, ui_digest(reference))
    return reference


def check_session_id(raw):
    if not isinstance(raw, str) or not SESSION_RE.fullmatch(raw):
        raise Malformed("X-Session")
    return raw


class LiveSession(NamedTuple):
    id: int
    expires_at: datetime.datetime
    username: str
    role: str


# Every authenticated request runs this lookup. Written as SQL: peewee takes
# 0.2-0.5 ms per call to build it, a quarter of the 2 ms a read route has
# beyond its own SQL in make bench, where SQLite runs it in 0.005 ms.
SESSION_SQL = (
    "SELECT s.id, s.expires_at, u.username, u.role FROM session AS s"
    " JOIN users AS u ON u.id = s.user_id WHERE s.token_hash = {param}"
)


def resolve(raw, timeout):
    """The live API session `raw` names, with its user; extends its idle timeout."""
    return _resolve(digest(check_session_id(raw)), timeout)


def resolve_ui(reference, timeout):
    """The live web UI sign-in `reference` names, like resolve()."""
    return _resolve(ui_digest(check_session_id(reference)), timeout)


def _resolve(token_hash, timeout):
    now = utcnow()
    sql = SESSION_SQL.format(param=database.param)
    row = database.execute_sql(sql, (token_hash,)).fetchone()
    if row is None:
        raise Unauthorized("Invalid session.")
    session = LiveSession(row[0], Session.expires_at.python_value(row[1]), row[2], row[3])
    if session.expires_at <= now:
        raise Unauthorized("Invalid session.")
    expires_at = now + datetime.timedelta(seconds=timeout)
    if expires_at - session.expires_at >= REFRESH_EVERY:
        Session.update(expires_at=expires_at).where(Session.id == session.id).execute()
        session = session._replace(expires_at=expires_at)
    return session


def close_session(raw):
    Session.delete().where(Session.token_hash == digest(raw)).execute()


def close_ui_session(reference):
    Session.delete().where(Session.token_hash == ui_digest(reference)).execute()


def purge_expired():
    return Session.delete().where(Session.expires_at <= utcnow()).execute()


class TokenUser(NamedTuple):
    username: str
    role: str


# Written as SQL for the same reason as SESSION_SQL: built by peewee, the
# lookup took 0.4-0.6 ms (0.016 ms this way) of the 4 ms a pool show route
# takes in make bench, against 5 ms allowed.
TOKEN_SQL = (
    "SELECT t.id, t.last_used_at, u.username, u.role FROM api_token AS t"
    " JOIN users AS u ON u.id = t.user_id WHERE t.token_hash = {param}"
)


def create_token(user, name):
    """Create an API token; the returned value is shown once and never stored."""
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    try:
        ApiToken.create(token_hash=digest(raw), name=name, user=user)
    except peewee.IntegrityError:
        raise Conflict(f"Token {name!r} already exists for {user.username}.") from None
    return raw


def list_tokens():
    return list(ApiToken.select(ApiToken, User).join(User).order_by(User.username, ApiToken.name))


def revoke_token(user, name):
    deleted = ApiToken.delete().where((ApiToken.user == user) & (ApiToken.name == name)).execute()
    if not deleted:
        raise NotFound(f"Token {name!r} not found for {user.username}.")


def authenticate_token(raw):
    """The owner of an API token, or Unauthorized.

    The pool dialects call this with whatever their header carried (`user-token`,
    `Authorization: Bearer`, `Token`).
    """
    if not isinstance(raw, str) or not raw.startswith(TOKEN_PREFIX) or len(raw) > 128:
        raise Unauthorized("Invalid token.")
    sql = TOKEN_SQL.format(param=database.param)
    row = database.execute_sql(sql, (digest(raw),)).fetchone()
    if row is None:
        raise Unauthorized("Invalid token.")
    token_id, last_used_at, username, role = row
    last_used_at = ApiToken.last_used_at.python_value(last_used_at)
    now = utcnow()
    if last_used_at is None or now - last_used_at >= TOKEN_USE_RECORDED_EVERY:
        ApiToken.update(last_used_at=now).where(ApiToken.id == token_id).execute()
    return TokenUser(username, role)
