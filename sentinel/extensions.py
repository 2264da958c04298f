"""Extensions and services, created unbound here and bound by create_app()."""

from flask import current_app
from flask_login import LoginManager
from flask_wtf.csrf import CSRFProtect
from redis import Redis

from .postgres import Postgres
from .samples import SampleStore

login_manager = LoginManager()
csrf = CSRFProtect()


class PostgresExtension:
    """The managed instance's connection pool, one per app and process."""

    def init_app(self, app):
        settings = app.config["SENTINEL"]
        app.extensions["sentinel.postgres"] = Postgres(
            settings["pg_dsn"],
            size=settings["pg_pool_size"],
            statement_timeout=settings["statement_timeout"],
            lock_timeout=settings["lock_timeout"],
            connect_timeout=settings["connect_timeout"],
        )

    @property
    def pool(self):
        return current_app.extensions["sentinel.postgres"]


class RedisExtension:
    """A Redis client for RQ and the sample store; redis-py connects on first use."""

    def init_app(self, app):
        connection = connect_redis(app.config["SENTINEL"]["redis_url"])
        app.extensions["sentinel.redis"] = connection
        app.extensions["sentinel.samples"] = SampleStore(connection)

    @property
    def connection(self):
        return current_app.extensions["sentinel.redis"]

    @property
    def samples(self):
        """Previous samples of rate measurements, shared by all processes."""
        return current_app.extensions["sentinel.samples"]


def connect_redis(url):
    # Short timeouts: a Redis outage must fail a request fast, not hang it.
    return Redis.from_url(url, socket_timeout=3, socket_connect_timeout=2)


postgres = PostgresExtension()
redis = RedisExtension()
