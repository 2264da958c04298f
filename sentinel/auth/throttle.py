"""Throttling of failed logins, per username and per client address.

Failures live in the state database, so every web worker (and every host when
the state is in PostgreSQL) sees the same counts, and logins keep working when
Redis is down. An attempt is counted as a failure before its (slow) password
check, by one statement that inserts it only while both counts are under their
limits: concurrent attempts cannot all pass a check made before any of them is
written (30 at once got 12 password checks against a limit of 5 that way). A
success takes its count back. A throttled attempt is refused before the
password is checked and is not counted, so an attacker cannot extend a lockout
indefinitely.
"""

import contextlib
import datetime
import functools
import math
import operator

import peewee

from ..errors import Throttled
from ..state import LoginFailure, database, is_postgresql, utcnow


def _scopes(username, address, limits):
    return (
        ("username", username, limits["login_max_failures"]),
        ("address", address, limits["login_max_failures_per_address"]),
    )


def _window(limits):
    return datetime.timedelta(seconds=limits["login_failure_window"])


def _failures(scope, key, since):
    return LoginFailure.select().where(
        (LoginFailure.scope == scope) & (LoginFailure.key == key) & (LoginFailure.at > since)
    )


@contextlib.contextmanager
def _taking_turns():
    """A transaction in which attempts are counted one at a time. SQLite runs
    one writing statement at a time anyway; PostgreSQL, in read committed, lets
    two statements count the same failures and both insert, unless they take
    turns on the table (for the few milliseconds of the statement)."""
    with database.atomic():
        if is_postgresql():
            table = LoginFailure._meta.table_name
            database.execute_sql(f"LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE")
        yield


def _insert_if_under_limits(scopes, now, since):
    """INSERT ... SELECT of the attempt's rows (one per scope), selected only
    while every key has fewer failures than its limit, RETURNING their ids."""
    each = [
        peewee.Select(columns=[peewee.Value(scope).alias("scope"), peewee.Value(key).alias("key")])
        for scope, key, _ in scopes
    ]
    rows = functools.reduce(lambda left, right: left.union_all(right), each).alias("attempt")
    under_limits = [
        _failures(scope, key, since).select(peewee.fn.COUNT(LoginFailure.id)) < maximum
        for scope, key, maximum in scopes
    ]
    attempt = peewee.Select(
        from_list=[rows], columns=[rows.c.scope, rows.c.key, peewee.Value(now)]
    ).where(functools.reduce(operator.and_, under_limits))
    return LoginFailure.insert_from(
        attempt, fields=[LoginFailure.scope, LoginFailure.key, LoginFailure.at]
    ).returning(LoginFailure.id)


def count_attempt(username, address, limits):
    """Count an attempt of `username` from `address` as a failure, before its
    password is checked: the ids to forgive() if it succeeds. Throttled, with
    nothing counted, when either has failed too often within the window."""
    now = utcnow()
    since = now - _window(limits)
    scopes = _scopes(username, address, limits)
    with _taking_turns():
        for scope, key, _ in scopes:  # this key's failures that left the window
            LoginFailure.delete().where(
                (LoginFailure.scope == scope)
                & (LoginFailure.key == key)
                & (LoginFailure.at <= since)
            ).execute()
        counted = [row.id for row in _insert_if_under_limits(scopes, now, since).execute()]
    if not counted:
        raise Throttled(_retry_after(scopes, now, limits))
    return counted


def _retry_after(scopes, now, limits):
    """Seconds until attempts open again: until enough failures of each key
    at its limit have left the window."""
    window = _window(limits)
    waits = [1]
    for scope, key, maximum in scopes:
        times = [row.at for row in _failures(scope, key, now - window).order_by(LoginFailure.at)]
        if len(times) >= maximum:
            freed_at = times[len(times) - maximum] + window
            waits.append(math.ceil((freed_at - now).total_seconds()))
    return max(waits)


def forgive(counted, username):
    """A successful login: its own attempt was no failure, and the username's
    earlier failures are forgiven (not the address's)."""
    LoginFailure.delete().where(
        LoginFailure.id.in_(counted)
        | ((LoginFailure.scope == "username") & (LoginFailure.key == username))
    ).execute()


def purge(window_seconds):
    cutoff = utcnow() - datetime.timedelta(seconds=window_seconds)
    return LoginFailure.delete().where(LoginFailure.at <= cutoff).execute()
