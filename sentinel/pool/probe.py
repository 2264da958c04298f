"""Reaching a source: its libpq parameters, and a bounded check that it
answers, which every dialect's connection test and create use."""

import psycopg2
import psycopg2.extensions

from ..errors import Invalid, SourceUnreachable

APPLICATION_NAME = "sentinel-pool"
CONNECT_TIMEOUT = 10  # s: libpq's connect_timeout, for the whole handshake
QUERY_TIMEOUT = 5000  # ms: statement_timeout of what a check runs


def parameters(source, dbname=None):
    """libpq keywords of `source` (a store dict with its password in clear)."""
    return {
        "host": source["host"],
        "port": source["port"],
        "dbname": dbname or source["dbname"],
        "user": source["user"],
        "password": source["password"],
        "sslmode": source["sslmode"],
    }


def primary_parameters(source):
    """libpq keywords of a replica source's primary, or None."""
    if source.get("primary_host") is None:
        return None
    return {
        "host": source["primary_host"],
        "port": source["primary_port"],
        "dbname": source["primary_dbname"],
        "user": source["primary_user"],
        "password": source["primary_password"],
        "sslmode": source["primary_sslmode"],
    }


def from_conninfo(conninfo):
    """libpq keywords of a connection string (URL or key=value), or Invalid."""
    if "\x00" in conninfo:
        raise Invalid("a NUL character cannot be sent to PostgreSQL")
    try:
        return psycopg2.extensions.parse_dsn(conninfo)
    except psycopg2.ProgrammingError as exc:
        # libpq quotes the word it stumbled on, which may be the password.
        reason = "" if "password" in conninfo else f" ({_first_line(exc)})"
        raise Invalid(f"not a libpq connection string (a URL or key=value pairs){reason}") from None


def _first_line(exc):
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _without(text, password):
    return text.replace(password, "********") if password else text


def connect(params, timeout=CONNECT_TIMEOUT):
    """An open connection to a source, within `timeout` seconds (libpq's
    minimum is 2), or SourceUnreachable with the driver's reason, the
    password never in it."""
    given = dict(params)
    given["connect_timeout"] = str(
        max(2, min(int(given.get("connect_timeout") or timeout), timeout))
    )
    given["application_name"] = APPLICATION_NAME
    given["options"] = f"-c statement_timeout={QUERY_TIMEOUT}"
    try:
        return psycopg2.connect(**given)
    except psycopg2.Error as exc:
        raise SourceUnreachable(_without(_first_line(exc), given.get("password"))) from None


def check(params, timeout=CONNECT_TIMEOUT):
    """SourceUnreachable unless the source accepts the login and answers a query."""
    connection = connect(params, timeout)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except psycopg2.Error as exc:
        raise SourceUnreachable(_without(_first_line(exc), params.get("password"))) from None
    finally:
        connection.close()
