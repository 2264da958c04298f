"""Sessions and API tokens. Only SHA-256 hashes of them are stored.

Both are 256-bit random values, so a plain hash is enough: a copy of the state
database gives no usable credential, and lookups stay one indexed read.
"""

import datetime
import hashlib
import multiprocessing
import re
import secrets
import threading
import time
from typing import NamedTuple

import peewee

from .errors import Conflict, Malformed, NotFound, Unauthorized
from .state import ApiToken, Session, User, compiled_once, database, utcnow

SESSION_RE = re.compile(r"[0-9a-f]{64}")
TOKEN_PREFIX = "snt_"
# An idle timeout is extended at most once a minute, so that reads stay reads.
REFRESH_EVERY = datetime.timedelta(seconds=60)
TOKEN_USE_RECORDED_EVERY = datetime.timedelta(seconds=60)


def digest(raw):
    return hashlib.sha256(raw.encode()).hexdigest()


def open_session(user, client, timeout):
    """Create a session for `user`; returns its id, which is shown only now."""
    raw = secrets.token_hex(32)
    Session.create(
        token_hash=digest(raw),
        user=user,
        expires_at=utcnow() + datetime.timedelta(seconds=timeout),
        client=(client or "")[:64],
    )
    return raw


def check_session_id(raw):
    if not isinstance(raw, str) or not SESSION_RE.fullmatch(raw):
        raise Malformed("X-Session")
    return raw


class LiveSession(NamedTuple):
    id: int
    expires_at: datetime.datetime
    username: str


class TokenOwner(NamedTuple):
    user_id: int
    username: str


# Every authenticated request runs these; the value compared is a parameter.
_session_sql = compiled_once(
    lambda: (
        Session.select(Session.id, Session.expires_at, User.username)
        .join(User)
        .where(Session.token_hash == "")
    )
)
_token_sql = compiled_once(
    lambda: (
        ApiToken.select(ApiToken.id, ApiToken.last_used_at, User.id, User.username)
        .join(User)
        .where(ApiToken.token_hash == "")
    )
)


class RecentlyChecked:
    """Sessions this process found valid less than `ttl` seconds ago.

    Every API call carries its session and clients call in bursts (a page
    polling several routes): within a second, a session checked once is not
    looked up again. Closing a session bumps a generation number kept in
    memory shared by every web worker forked from the same master (gunicorn
    preloads the app), which empties all their caches at once: on one host a
    closed session stops working immediately. Only another host sharing the
    state database, or a deletion from the command line, may see it accepted
    for up to `ttl` seconds more.
    """

    def __init__(self, ttl=1.0, size=4096):
        self.ttl = ttl
        self.size = size
        self._checked = {}
        self._lock = threading.Lock()
        self._generation = multiprocessing.RawValue("Q", 0)
        self._bump = multiprocessing.Lock()

    def get(self, key, now):
        entry = self._checked.get(key)
        if (
            entry
            and entry[0] == self._generation.value
            and time.monotonic() - entry[1] < self.ttl
            and entry[2].expires_at > now
        ):
            return entry[2]
        return None

    def put(self, key, session):
        with self._lock:
            if len(self._checked) >= self.size:
                self._checked.clear()
            self._checked[key] = (self._generation.value, time.monotonic(), session)

    def forget(self, key):
        with self._bump:
            self._generation.value += 1
        with self._lock:
            self._checked.pop(key, None)


def resolve(raw, timeout, recent=None):
    """The live session `raw` names, with its user; extends its idle timeout.

    `recent` (a RecentlyChecked) spares the lookup of a session checked a
    moment ago.
    """
    check_session_id(raw)
    now = utcnow()
    key = digest(raw)
    if recent is not None and (session := recent.get(key, now)) is not None:
        return session
    row = database.execute_sql(_session_sql(), (key,)).fetchone()
    if row is None:
        raise Unauthorized("Invalid session.")
    session = LiveSession(row[0], Session.expires_at.python_value(row[1]), row[2])
    if session.expires_at <= now:
        raise Unauthorized("Invalid session.")
    expires_at = now + datetime.timedelta(seconds=timeout)
    if expires_at - session.expires_at >= REFRESH_EVERY:
        Session.update(expires_at=expires_at).where(Session.id == session.id).execute()
        session = session._replace(expires_at=expires_at)
    if recent is not None:
        recent.put(key, session)
    return session


def close_session(raw, recent=None):
    key = digest(raw)
    Session.delete().where(Session.token_hash == key).execute()
    if recent is not None:
        recent.forget(key)


def purge_expired():
    return Session.delete().where(Session.expires_at <= utcnow()).execute()


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
    token = (
        ApiToken.select(ApiToken, User).join(User).where(ApiToken.token_hash == digest(raw)).first()
    )
    if token is None:
        raise Unauthorized("Invalid token.")
    now = utcnow()
    if token.last_used_at is None or now - token.last_used_at >= TOKEN_USE_RECORDED_EVERY:
        ApiToken.update(last_used_at=now).where(ApiToken.id == token.id).execute()
    return token.user
