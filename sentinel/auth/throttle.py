"""Throttling of failed logins, per username and per client address.

Failures live in the state database, so every web worker (and every host when
the state is in PostgreSQL) sees the same counts, and logins keep working when
Redis is down. A throttled attempt is refused before the password is checked and
is not counted, so an attacker cannot extend a lockout indefinitely.
"""

import datetime
import math

from ..errors import Throttled
from ..state import LoginFailure, database, utcnow


def _scopes(username, address, limits):
    return (
        ("username", username, limits["login_max_failures"]),
        ("address", address, limits["login_max_failures_per_address"]),
    )


def check(username, address, limits):
    """Raise Throttled when either the username or the address has failed too often."""
    now = utcnow()
    window = datetime.timedelta(seconds=limits["login_failure_window"])
    waits = []
    for scope, key, maximum in _scopes(username, address, limits):
        times = [
            row.at
            for row in LoginFailure.select(LoginFailure.at)
            .where(
                (LoginFailure.scope == scope)
                & (LoginFailure.key == key)
                & (LoginFailure.at > now - window)
            )
            .order_by(LoginFailure.at)
        ]
        if len(times) >= maximum:
            # Attempts open again once enough failures have left the window.
            freed_at = times[len(times) - maximum] + window
            waits.append((freed_at - now).total_seconds())
    if waits:
        raise Throttled(max(1, math.ceil(max(waits))))


def record_failure(username, address, limits):
    now = utcnow()
    cutoff = now - datetime.timedelta(seconds=limits["login_failure_window"])
    with database.atomic():
        for scope, key, _ in _scopes(username, address, limits):
            LoginFailure.delete().where(
                (LoginFailure.scope == scope)
                & (LoginFailure.key == key)
                & (LoginFailure.at <= cutoff)
            ).execute()
            LoginFailure.create(scope=scope, key=key, at=now)


def clear(username):
    """A successful login forgives the username's failures (not the address's)."""
    LoginFailure.delete().where(
        (LoginFailure.scope == "username") & (LoginFailure.key == username)
    ).execute()


def purge(window_seconds):
    cutoff = utcnow() - datetime.timedelta(seconds=window_seconds)
    return LoginFailure.delete().where(LoginFailure.at <= cutoff).execute()
