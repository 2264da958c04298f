"""The checks a source must pass before it is registered with a replication
slot (Sequin's dialect): each failure says which check failed and why.

In order: the server is reachable, the login works, the role may CONNECT to
the database, the publication exists there, the slot exists, is logical and
belongs to that database, `max_replication_slots` is above 0 and `wal_level`
is `logical`. A missing publication or slot is NotFound; a server that does
not answer or refuses the login is SourceUnreachable; anything else Invalid.
"""

import logging
import socket
import time

import psycopg2

from ..errors import Invalid, NotFound, SourceUnreachable
from . import probe

logger = logging.getLogger(__name__)

# What the server says when the role lacks CONNECT on the database (SQLSTATE
# 42501, which libpq does not hand over for a refused connection).
NO_CONNECT_PRIVILEGE = ("permission denied for database", "CONNECT privilege")


def _reachable(params, timeout):
    """SourceUnreachable unless something accepts a TCP connection at the
    host and port. A socket directory or a list of hosts is left to libpq."""
    host, port = params["host"], params["port"]
    if host.startswith("/") or "," in host:
        return
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except (OSError, ValueError) as exc:  # ValueError: a name IDNA cannot encode
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        raise SourceUnreachable(
            f"The server is not reachable at {host}:{port}: {reason}."
            " Check the hostname, the port and that the server accepts connections from here."
        ) from None


def _logged_in(params, timeout):
    """An open connection to the database, or why the role could not log in
    to it (no CONNECT privilege told apart from the rest)."""
    try:
        return probe.connect(params, timeout=timeout)
    except SourceUnreachable as exc:
        if any(text in exc.message for text in NO_CONNECT_PRIVILEGE):
            raise Invalid(
                f"The role {params['user']!r} may not CONNECT to the database"
                f" {params['dbname']!r}: {exc.message}"
            ) from None
        raise SourceUnreachable(
            f"Could not log in to the database {params['dbname']!r} as {params['user']!r}:"
            f" {exc.message}"
        ) from None


def _scalar(cursor, sql, params=None):
    cursor.execute(sql, params)
    return cursor.fetchone()[0]


def _may_connect(cursor, params):
    if not _scalar(cursor, "SELECT has_database_privilege(current_database(), 'CONNECT')"):
        raise Invalid(
            f"The role {params['user']!r} has no CONNECT privilege on the database"
            f" {params['dbname']!r}."
        )


def _publication_exists(cursor, params, publication):
    if not _scalar(
        cursor, "SELECT count(*) FROM pg_catalog.pg_publication WHERE pubname = %s", (publication,)
    ):
        raise NotFound(
            f"Not found: no publication {publication!r} in the database {params['dbname']!r}."
            " Create it there (CREATE PUBLICATION) or name another."
        )


def _slot_fits(cursor, params, slot):
    cursor.execute(
        "SELECT slot_type, database FROM pg_catalog.pg_replication_slots WHERE slot_name = %s",
        (slot,),
    )
    row = cursor.fetchone()
    if row is None:
        raise NotFound(
            f"Not found: no replication slot {slot!r} on the server. Create it with"
            f" SELECT pg_create_logical_replication_slot('{slot}', 'pgoutput')"
            f" in the database {params['dbname']!r}."
        )
    slot_type, database = row
    if slot_type != "logical":
        raise Invalid(f"The replication slot {slot!r} is a {slot_type} slot, not a logical one.")
    current = _scalar(cursor, "SELECT current_database()")
    if database != current:
        raise Invalid(
            f"The replication slot {slot!r} belongs to the database {database!r},"
            f" not to {current!r}."
        )


def _settings_allow_slots(cursor):
    slots = int(_scalar(cursor, "SELECT current_setting('max_replication_slots')"))
    if slots <= 0:
        raise Invalid("max_replication_slots is 0 on the server: it allows no replication slot.")
    wal_level = _scalar(cursor, "SELECT current_setting('wal_level')")
    if wal_level != "logical":
        raise Invalid(
            f"wal_level is {wal_level!r} on the server, not 'logical':"
            " logical replication needs it (a restart is needed to change it)."
        )


def verify(params, publication=None, slot=None, timeout=probe.CONNECT_TIMEOUT):
    """Run the checks, in order, against the source of libpq `params` (its
    password in clear), within `timeout` seconds to connect; the publication
    and slot checks only when they are named. Raises at the first failure."""
    started = time.monotonic()
    _reachable(params, timeout)
    remaining = max(2, timeout - (time.monotonic() - started))
    connection = _logged_in(params, remaining)
    try:
        with connection.cursor() as cursor:
            _may_connect(cursor, params)
            if publication is not None:
                _publication_exists(cursor, params, publication)
            if slot is not None:
                _slot_fits(cursor, params, slot)
                _settings_allow_slots(cursor)
    except psycopg2.Error as exc:
        # A check's query failed (timeout, connection lost): say so, without the password.
        reason = str(exc).strip().splitlines()[:1] or [type(exc).__name__]
        raise SourceUnreachable(f"The server stopped answering the checks: {reason[0]}") from None
    finally:
        connection.close()
    logger.info(
        "event=source_verified host=%s port=%s dbname=%s slot=%s",
        params["host"],
        params["port"],
        params["dbname"],
        slot,
    )
