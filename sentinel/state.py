"""Sentinel's own state: peewee models on SQLite (WAL) or PostgreSQL.

The models are bound at start to the database the configuration names, through
a proxy, so importing this module opens nothing. Schema changes are forward
migrations in sentinel/migrations/, applied under a lock so that several web
and worker processes starting together apply each one once.
"""

import contextlib
import datetime
import fcntl
import functools
import logging
import os
from pathlib import Path
from urllib.parse import unquote, urlsplit

import peewee
from playhouse.migrations import Runner
from playhouse.pool import PooledPostgresqlDatabase, PooledSqliteDatabase

from .postgres import looks_alive

logger = logging.getLogger(__name__)

database = peewee.DatabaseProxy()
MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# Any constant works; it only has to be the same in every Sentinel process.
MIGRATION_LOCK_ID = 0x53454E54

SQLITE_PRAGMAS = {
    "journal_mode": "wal",
    "synchronous": "normal",  # durable across crashes in WAL mode, cheaper commits
    "busy_timeout": 5000,  # web and worker processes write at the same time
    "foreign_keys": 1,
}


def utcnow():
    """Naive UTC timestamp: what every DateTimeField here stores."""
    return datetime.datetime.now(datetime.UTC).replace(tzinfo=None)


class BaseModel(peewee.Model):
    class Meta:
        database = database
        legacy_table_names = False


class User(BaseModel):
    username = peewee.CharField(unique=True, max_length=64)
    password_hash = peewee.CharField(max_length=255)
    role = peewee.CharField(max_length=16, default="viewer")  # admin | viewer
    created_at = peewee.DateTimeField(default=utcnow)

    class Meta:
        table_name = "users"


class Session(BaseModel):
    """A signed-in user: API callers via X-Session, the web UI via its cookie."""

    token_hash = peewee.CharField(unique=True, max_length=64)
    user = peewee.ForeignKeyField(User, backref="sessions", on_delete="CASCADE")
    created_at = peewee.DateTimeField(default=utcnow)
    expires_at = peewee.DateTimeField(index=True)
    client = peewee.CharField(max_length=64, default="")


class ApiToken(BaseModel):
    """A long-lived credential for programs; only its hash is kept."""

    token_hash = peewee.CharField(unique=True, max_length=64)
    name = peewee.CharField(max_length=64)
    user = peewee.ForeignKeyField(User, backref="tokens", on_delete="CASCADE")
    created_at = peewee.DateTimeField(default=utcnow)
    last_used_at = peewee.DateTimeField(null=True)

    class Meta:
        indexes = ((("user", "name"), True),)


class Notification(BaseModel):
    """The audit log: who did what, newest first."""

    created_at = peewee.DateTimeField(default=utcnow, index=True)
    username = peewee.CharField(max_length=64)
    message = peewee.TextField()


class LoginFailure(BaseModel):
    """One failed login, counted per username and per client address."""

    scope = peewee.CharField(max_length=16)  # "username" or "address"
    key = peewee.CharField(max_length=255)
    at = peewee.DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("scope", "key", "at"), False),)


class DashboardSample(BaseModel):
    """One dashboard data set, as the collector took it; the newest are kept."""

    collected_at = peewee.DateTimeField(index=True)
    data = peewee.TextField()  # JSON


class MonitoringRun(BaseModel):
    """One run of every monitoring probe, kept for monitoring_retention."""

    collected_at = peewee.DateTimeField(index=True)
    data = peewee.TextField()  # JSON


MODELS = (User, Session, ApiToken, Notification, LoginFailure, DashboardSample, MonitoringRun)


class StatePostgresqlDatabase(PooledPostgresqlDatabase):
    """peewee's pool pings every connection it hands out (a round trip per
    request); a look at the idle socket tells the same for free."""

    def _is_closed(self, conn):
        return not looks_alive(conn)


def compiled_once(build):
    """For queries on a hot path: the SQL text of the peewee query `build()`
    returns, compiled once per kind of database instead of on every call.
    Run it with database.execute_sql(sql(), params)."""

    @functools.lru_cache(maxsize=4)
    def compile_for(database_class):
        return build().sql()[0]

    return lambda: compile_for(type(database.obj))


def private_sqlite_files(path):
    """Make the SQLite database only its owner may read or write, with its -wal
    and -shm files: SQLite would create it 0644, and gives those two the
    database file's mode. One made readable before is closed up too."""
    path = Path(path)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    for file in (path, path.with_name(f"{path.name}-wal"), path.with_name(f"{path.name}-shm")):
        with contextlib.suppress(FileNotFoundError):
            if file.stat().st_mode & 0o077:
                file.chmod(0o600)


def open_database(url):
    """A pooled peewee database for a sqlite:///path or postgresql:// URL."""
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        path = unquote(parts.path)
        private_sqlite_files(path)
        return PooledSqliteDatabase(
            path,
            pragmas=SQLITE_PRAGMAS,
            # Every transaction takes the write lock as it begins, waiting
            # behind other writers for busy_timeout. Begun plainly, one that
            # read then wrote was refused at once ("database is locked") when
            # another process had committed in between.
            lock_type="IMMEDIATE",
            max_connections=32,
            stale_timeout=300,
            check_same_thread=False,
        )
    return StatePostgresqlDatabase(
        unquote(parts.path.lstrip("/")),
        host=parts.hostname,
        port=parts.port,
        user=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        max_connections=32,
        stale_timeout=300,
        application_name="sentinel-state",
        connect_timeout=5,
    )


def bind(url):
    """Point the models at the database `url` names (once per process)."""
    db = open_database(url)
    database.initialize(db)
    return db


def is_postgresql():
    return isinstance(database.obj, peewee.PostgresqlDatabase)


def backend_pid():
    """The PostgreSQL backend pid of this thread's state connection (the one
    its writes go through), or None when the state is in SQLite."""
    if not is_postgresql():
        return None
    return database.connection().get_backend_pid()


@contextlib.contextmanager
def migration_lock(db, lock_path):
    """Serialise migrations between processes (and hosts sharing PostgreSQL)."""
    if isinstance(db, peewee.PostgresqlDatabase):
        with db.connection_context():
            db.execute_sql("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_ID,))
            try:
                yield
            finally:
                db.execute_sql("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK_ID,))
        return
    fd = os.open(lock_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            with db.connection_context():
                yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def runner(db):
    return Runner(db, directory=str(MIGRATIONS_DIR), table_name="sentinel_schema")


def pending_migrations(db):
    with db.connection_context():
        return [m.name for m in runner(db).status() if m.applied is None]


def migrate(db, state_dir):
    """Apply pending forward migrations; returns the names applied."""
    with migration_lock(db, Path(state_dir) / "migrate.lock"):
        applied = runner(db).up()
    for name in applied:
        logger.info("event=migration_applied name=%s", name)
    return applied
