"""Connections to the managed PostgreSQL instance, and the SQL Sentinel runs there.

One small blocking pool per process hands out autocommit connections that carry
`application_name = 'sentinel'`, a statement_timeout and a lock_timeout, so a
monitoring query can neither run away nor queue behind a lock. Rows come back as
dicts. A connection the server closed while it sat in the pool (a restart) is
noticed at checkout, or on first use, and replaced without the caller seeing it.

SQL longer than a line lives in sentinel/sql/<name>.sql; a line ending in
`-- pg>=N` or `-- pg<N` is kept only on servers of major version N or later
(earlier), so one file serves every supported version. `conn.named(name)` runs
such a file as a statement prepared once per pooled connection: planning a
query over the statistics views costs several times more than running it
(1.3 ms against 0.2 ms for /activity's), and pooled connections live long.
"""

import contextlib
import functools
import logging
import os
import re
import select
import threading
import weakref
from pathlib import Path

import psycopg2
import psycopg2.errors
import psycopg2.extensions

from .errors import PostgresTimeout, PostgresUnavailable

logger = logging.getLogger(__name__)

SQL_DIR = Path(__file__).parent / "sql"
APPLICATION_NAME = "sentinel"
_MARKER = re.compile(r"--\s*pg(>=|<)(\d+)\s*$")
_NAMED_PARAMETER = re.compile(r"%\((\w+)\)s")


@functools.lru_cache(maxsize=256)
def load_sql(name, server_version=None):
    """The text of sql/<name>.sql for a server_version (psycopg2's int, 150018)."""
    major = server_version // 10000 if server_version else None
    lines = []
    for line in (SQL_DIR / f"{name}.sql").read_text().splitlines():
        marker = _MARKER.search(line)
        if marker and major is not None:
            op, version = marker.group(1), int(marker.group(2))
            if (op == ">=" and major < version) or (op == "<" and major >= version):
                continue
            line = line[: marker.start()].rstrip()
        lines.append(line)
    return "\n".join(lines)


def _first_line(exc):
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _unavailable(exc):
    return PostgresUnavailable(_first_line(exc))


def _translated(exc, raw):
    """The project's error for a driver error, or None when it is a plain bug."""
    if isinstance(exc, psycopg2.errors.QueryCanceled | psycopg2.errors.LockNotAvailable):
        return PostgresTimeout(_first_line(exc))
    if raw.closed:
        return _unavailable(exc)
    return None


def looks_alive(raw):
    """False when the server has closed, or written to, an idle psycopg2 connection.

    An idle connection receives nothing unless the server is going away, so a
    readable socket means a termination notice or EOF: a syscall, not a ping.
    """
    if raw.closed:
        return False
    try:
        readable, _, _ = select.select([raw.fileno()], [], [], 0)
    except (OSError, ValueError):
        return False
    return not readable


def numbered(sql):
    """psycopg2's %(name)s parameters as PostgreSQL's $1, $2...: (text, names).

    A parameter whose type PostgreSQL cannot infer needs a cast in the SQL
    (`%(pids)s::int[]`). With parameters, psycopg2 wanted %% for a literal %.
    """
    names = []

    def number(match):
        if match.group(1) not in names:
            names.append(match.group(1))
        return f"${names.index(match.group(1)) + 1}"

    text = _NAMED_PARAMETER.sub(number, sql)
    return (text.replace("%%", "%") if names else text), names


class Connection:
    """A pooled connection with dict-row helpers."""

    def __init__(self, raw, prepared=None):
        self.raw = raw
        self._prepared = prepared if prepared is not None else {}

    @property
    def server_version(self):
        return self.raw.server_version

    def sql(self, name):
        return load_sql(name, self.raw.server_version)

    def execute(self, sql, params=None):
        with self.raw.cursor() as cursor:
            cursor.execute(sql, params)

    def query(self, sql, params=None):
        with self.raw.cursor() as cursor:
            cursor.execute(sql, params)
            if cursor.description is None:
                return []
            columns = [column.name for column in cursor.description]
            return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]

    def queryone(self, sql, params=None):
        rows = self.query(sql, params)
        return rows[0] if rows else None

    def queryscalar(self, sql, params=None):
        with self.raw.cursor() as cursor:
            cursor.execute(sql, params)
            row = cursor.fetchone()
            return row[0] if row else None

    def prepared(self, statement, sql, params=None):
        """Rows of `sql` run as the statement `statement`, prepared on this
        connection the first time and only executed after that."""
        names = self._prepared.get(statement)
        if names is None:
            text, names = numbered(sql)
            self.execute(f"PREPARE sentinel_{statement} AS {text}")
            self._prepared[statement] = names
        if not names:
            return self.query(f"EXECUTE sentinel_{statement}")
        placeholders = ", ".join(["%s"] * len(names))
        values = tuple((params or {})[name] for name in names)
        return self.query(f"EXECUTE sentinel_{statement}({placeholders})", values)

    def named(self, name, params=None):
        """Rows of sql/<name>.sql (named %(parameters)s), as a prepared statement."""
        return self.prepared(name, self.sql(name), params)

    def named_one(self, name, params=None):
        rows = self.named(name, params)
        return rows[0] if rows else None


class Postgres:
    """The managed instance: a pool of at most `size` connections per process."""

    def __init__(
        self,
        dsn,
        *,
        size=3,
        statement_timeout=5000,
        lock_timeout=1000,
        connect_timeout=5,
        application_name=APPLICATION_NAME,
    ):
        params = psycopg2.extensions.parse_dsn(dsn)
        options = params.get("options", "")
        params["options"] = (
            f"{options} -c statement_timeout={int(statement_timeout)}"
            f" -c lock_timeout={int(lock_timeout)}"
        ).strip()
        params["application_name"] = application_name
        params.setdefault("connect_timeout", str(int(connect_timeout)))
        self.dsn = psycopg2.extensions.make_dsn(**params)
        self.size = size
        self.wait = float(connect_timeout) + 1
        self._idle = []
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(size)
        self._pid = os.getpid()
        # Statements prepared on each pooled connection: {statement: parameter names}.
        self._statements = weakref.WeakKeyDictionary()

    def _forget_inherited(self):
        # After a fork the parent's sockets are not ours to use or close.
        if self._pid != os.getpid():
            with self._lock:
                self._idle = []
                self._statements = weakref.WeakKeyDictionary()
                self._slots = threading.BoundedSemaphore(self.size)
                self._pid = os.getpid()

    def _open(self):
        try:
            raw = psycopg2.connect(self.dsn)
        except psycopg2.Error as exc:
            raise _unavailable(exc) from None
        raw.autocommit = True
        return raw

    def _checkout(self):
        self._forget_inherited()
        if not self._slots.acquire(timeout=self.wait):
            raise PostgresUnavailable(f"all {self.size} connections are busy")
        try:
            while True:
                with self._lock:
                    raw = self._idle.pop() if self._idle else None
                if raw is None:
                    return self._open(), False
                if looks_alive(raw):
                    return raw, True
                self._discard(raw)
        except BaseException:
            self._slots.release()
            raise

    def _checkin(self, raw):
        reusable = (
            not raw.closed
            and raw.info.transaction_status == psycopg2.extensions.TRANSACTION_STATUS_IDLE
        )
        if reusable:
            with self._lock:
                self._idle.append(raw)
        else:
            self._discard(raw)
        self._slots.release()

    @staticmethod
    def _discard(raw):
        with contextlib.suppress(psycopg2.Error):
            raw.close()

    def _wrap(self, raw):
        with self._lock:
            statements = self._statements.setdefault(raw, {})
        return Connection(raw, statements)

    @contextlib.contextmanager
    def connection(self):
        """A connection for several statements; errors become the project's own."""
        raw, _ = self._checkout()
        try:
            yield self._wrap(raw)
        except (psycopg2.OperationalError, psycopg2.InterfaceError) as exc:
            raise _translated(exc, raw) or exc from None
        finally:
            self._checkin(raw)

    def run(self, work):
        """Call work(connection) once; again on a fresh connection if the pooled
        one turns out dead (the server restarted since it was last used).

        Only for work that is safe to repeat: a statement sent over a dead
        connection never reached the server.
        """
        for attempt in (1, 2):
            raw, reused = self._checkout()
            try:
                return work(self._wrap(raw))
            except (psycopg2.OperationalError, psycopg2.InterfaceError) as exc:
                if raw.closed and reused and attempt == 1:
                    logger.info("event=stale_connection_replaced")
                    continue
                raise _translated(exc, raw) or exc from None
            finally:
                self._checkin(raw)

    @contextlib.contextmanager
    def other_database(self, dbname):
        """A short-lived connection to another database of the instance, with
        the same name and timeouts (for what only that database can answer,
        such as its relation names or its tables' statistics). Not pooled:
        it is closed on exit."""
        params = psycopg2.extensions.parse_dsn(self.dsn)
        params["dbname"] = dbname
        try:
            raw = psycopg2.connect(psycopg2.extensions.make_dsn(**params))
        except psycopg2.Error as exc:
            raise _unavailable(exc) from None
        raw.autocommit = True
        try:
            yield Connection(raw)
        except (psycopg2.OperationalError, psycopg2.InterfaceError) as exc:
            raise _translated(exc, raw) or exc from None
        finally:
            self._discard(raw)

    def query(self, sql, params=None):
        return self.run(lambda conn: conn.query(sql, params))

    def queryone(self, sql, params=None):
        return self.run(lambda conn: conn.queryone(sql, params))

    def queryscalar(self, sql, params=None):
        return self.run(lambda conn: conn.queryscalar(sql, params))

    def close(self):
        with self._lock:
            idle, self._idle = self._idle, []
        for raw in idle:
            self._discard(raw)
