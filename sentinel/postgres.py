"""Connections to the managed PostgreSQL instance, and the SQL Sentinel runs there.

One small blocking pool per process hands out autocommit connections, to the
instance's main database or any other, that carry `application_name =
'sentinel'`, a statement_timeout and a lock_timeout, so a monitoring query can
neither run away nor queue behind a lock. Rows come back as dicts. A
connection the server closed while it sat in the pool (a restart) is noticed
at checkout, or on first use, and replaced without the caller seeing it.

SQL longer than a line lives in a `sql/` folder beside the module that runs
it; a line ending in `-- pg>=N` or `-- pg<N` is kept only on servers of major
version N or later (earlier), so one file serves every supported version.
Parameters are psycopg2's `%(name)s`; a file run with parameters writes a
literal percent sign as `%%`. Such a file runs as a statement prepared once
per pooled connection: planning a query over the statistics views costs the
watched instance more than running it (/activity's: 0.9 ms of its 1.1 ms at
10 backends), and a dashboard polls it every few seconds. Without it, make
bench measured /activity at 5.1 ms against the 4.7 ms allowed.
"""

import contextlib
import functools
import getpass
import logging
import os
import re
import select
import threading
from pathlib import Path

import psycopg2
import psycopg2.errors
import psycopg2.extensions

from .errors import PostgresTimeout, PostgresUnavailable

logger = logging.getLogger(__name__)

APPLICATION_NAME = "sentinel"
_MARKER = re.compile(r"--\s*pg(>=|<)(\d+)\s*$")
_NAMED_PARAMETER = re.compile(r"%\((\w+)\)s")
LOCAL_HOSTS = ("", "localhost", "127.0.0.1", "::1")


def sql_folder(module_file):
    """The `sql/` folder beside a module: `SQL = sql_folder(__file__)`."""
    return Path(module_file).parent / "sql"


@functools.lru_cache(maxsize=256)
def load_sql(path, server_version=None):
    """The text of the SQL file `path` for a server_version (psycopg2's int, 150018)."""
    major = server_version // 10000 if server_version else None
    lines = []
    for line in Path(path).read_text().splitlines():
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


class RawConnection(psycopg2.extensions.connection):
    """psycopg2's connection, remembering the statements prepared on it."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.prepared = {}  # statement name -> its parameters' names, in order


class Connection:
    """A pooled connection with dict-row helpers."""

    def __init__(self, raw):
        self.raw = raw

    @property
    def server_version(self):
        return self.raw.server_version

    def sql(self, path):
        """The text of an SQL file for this server's version."""
        return load_sql(path, self.raw.server_version)

    def execute(self, sql, params=None):
        with self.raw.cursor() as cursor:
            cursor.execute(sql, params)

    def query(self, sql, params=None):
        with self.raw.cursor() as cursor:
            cursor.execute(sql, params)
            if cursor.description is None:
                return []
            columns = [column.name for column in cursor.description]
            return [dict(zip(columns, row, strict=False)) for row in cursor.fetchall()]

    def queryone(self, sql, params=None):
        rows = self.query(sql, params)
        return rows[0] if rows else None

    def queryscalar(self, sql, params=None):
        with self.raw.cursor() as cursor:
            cursor.execute(sql, params)
            row = cursor.fetchone()
            return row[0] if row else None

    def _prepared(self, path, params):
        """(EXECUTE statement, its values) of the SQL file `path` (named
        %(parameters)s), prepared on this connection the first time."""
        path = Path(path)
        statement = re.sub(r"\W", "_", f"sentinel_{path.parent.parent.name}_{path.stem}")
        names = self.raw.prepared.get(statement)
        if names is None:
            text, names = numbered(self.sql(path))
            self.execute(f"PREPARE {statement} AS {text}")
            self.raw.prepared[statement] = names
        if not names:
            return f"EXECUTE {statement}", None
        placeholders = ", ".join(["%s"] * len(names))
        return f"EXECUTE {statement}({placeholders})", tuple((params or {})[n] for n in names)

    def query_file(self, path, params=None):
        """Rows (dicts) of the SQL file `path`, run as a prepared statement."""
        return self.query(*self._prepared(path, params))

    def tuples_file(self, path, params=None):
        """Rows of the SQL file `path` as tuples, for reads of many thousand
        rows that need no names (20,000 column statistics: 40 ms less)."""
        with self.raw.cursor() as cursor:
            cursor.execute(*self._prepared(path, params))
            return cursor.fetchall()

    def queryone_file(self, path, params=None):
        rows = self.query_file(path, params)
        return rows[0] if rows else None


class Postgres:
    """The managed instance: at most `size` connections per process, all
    databases together; idle ones are kept for reuse, the least recently used
    closed first when another database needs the room."""

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
        self.host = params.get("host") or params.get("hostaddr") or ""
        self.port = int(params.get("port") or 5432)
        # The DSN's database (libpq's default: the user's name), so that asking
        # for it by name reuses the same pooled connections.
        self.dbname = params.get("dbname") or params.get("user") or getpass.getuser()
        self.size = size
        self.wait = float(connect_timeout) + 1
        self._idle = []  # [(dbname, raw)], the most recently used last
        self._busy = 0
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(size)
        self._pid = os.getpid()

    def identity(self, hostname):
        """Which instance this is, for keys shared with other Sentinels (one
        Redis for many hosts): its host and port, a local host named by the
        name of the host Sentinel runs on."""
        local = self.host in LOCAL_HOSTS or self.host.startswith("/")
        return f"{hostname if local else self.host}:{self.port}"

    def _forget_inherited(self):
        # After a fork the parent's sockets are not ours to use or close.
        if self._pid != os.getpid():
            with self._lock:
                self._idle, self._busy = [], 0
                self._slots = threading.BoundedSemaphore(self.size)
                self._pid = os.getpid()

    def _open(self, dbname):
        dsn = psycopg2.extensions.make_dsn(self.dsn, dbname=dbname)
        try:
            raw = psycopg2.connect(dsn, connection_factory=RawConnection)
        except psycopg2.Error as exc:
            raise _unavailable(exc) from None
        raw.autocommit = True
        return raw

    def _take_idle(self, dbname):
        """(an idle connection to `dbname` or None, idle connections to close
        so that one more fits within `size`)."""
        with self._lock:
            for index in range(len(self._idle) - 1, -1, -1):
                if self._idle[index][0] == dbname:
                    self._busy += 1
                    return self._idle.pop(index)[1], []
            evicted = []
            while self._idle and self._busy + len(self._idle) + 1 > self.size:
                evicted.append(self._idle.pop(0)[1])
            self._busy += 1
            return None, evicted

    def _checkout(self, dbname):
        self._forget_inherited()
        if not self._slots.acquire(timeout=self.wait):
            raise PostgresUnavailable(f"all {self.size} connections are busy")
        try:
            while True:
                raw, evicted = self._take_idle(dbname)
                for old in evicted:
                    self._discard(old)
                if raw is None:
                    try:
                        return self._open(dbname), False
                    except BaseException:
                        self._unbusy()
                        raise
                if looks_alive(raw):
                    return raw, True
                self._discard(raw)
                self._unbusy()
        except BaseException:
            self._slots.release()
            raise

    def _unbusy(self):
        with self._lock:
            self._busy -= 1

    def _checkin(self, dbname, raw):
        reusable = (
            not raw.closed
            and raw.info.transaction_status == psycopg2.extensions.TRANSACTION_STATUS_IDLE
        )
        with self._lock:
            self._busy -= 1
            if reusable:
                self._idle.append((dbname, raw))
        if not reusable:
            self._discard(raw)
        self._slots.release()

    @staticmethod
    def _discard(raw):
        with contextlib.suppress(psycopg2.Error):
            raw.close()

    @contextlib.contextmanager
    def connection(self, dbname=None):
        """A connection (to `dbname`, default the DSN's database) for several
        statements; errors become the project's own."""
        dbname = dbname or self.dbname
        raw, _ = self._checkout(dbname)
        try:
            yield Connection(raw)
        except (psycopg2.OperationalError, psycopg2.InterfaceError) as exc:
            raise _translated(exc, raw) or exc from None
        finally:
            self._checkin(dbname, raw)

    def run(self, work, dbname=None):
        """Call work(connection) once; again on a fresh connection if the pooled
        one turns out dead (the server restarted since it was last used).

        Only for work that is safe to repeat: a statement sent over a dead
        connection never reached the server.
        """
        dbname = dbname or self.dbname
        for attempt in (1, 2):
            raw, reused = self._checkout(dbname)
            try:
                return work(Connection(raw))
            except (psycopg2.OperationalError, psycopg2.InterfaceError) as exc:
                if raw.closed and reused and attempt == 1:
                    logger.debug("event=stale_connection_replaced")
                    continue
                raise _translated(exc, raw) or exc from None
            finally:
                self._checkin(dbname, raw)

    def query(self, sql, params=None):
        return self.run(lambda conn: conn.query(sql, params))

    def queryone(self, sql, params=None):
        return self.run(lambda conn: conn.queryone(sql, params))

    def queryscalar(self, sql, params=None):
        return self.run(lambda conn: conn.queryscalar(sql, params))

    def close(self):
        with self._lock:
            idle, self._idle = self._idle, []
        for _, raw in idle:
            self._discard(raw)
