"""Sentinel: a PostgreSQL agent serving the temBoard agent API, with a web UI."""

import datetime
import os
import sys

from flask import Flask
from flask.sessions import SecureCookieSessionInterface
from werkzeug.middleware.proxy_fix import ProxyFix

from . import config as config_module
from . import logs, state
from .errors import NotReady

__version__ = "0.1.0"


def create_app(config=None):
    """Build the application. `config` overrides settings (tests use it).

    Nothing here runs at import time; the factory reads the configuration,
    brings the state database's schema up to date and binds everything.
    """
    settings = config_module.load(overrides=config)
    app = Flask(
        __name__,
        template_folder=str(config_module.PROJECT_ROOT / "templates"),
        static_folder=str(config_module.PROJECT_ROOT / "static"),
    )
    configure_app(app, settings)
    logs.configure(settings["log_level"])
    register_state(app)
    register_extensions(app)
    register_blueprints(app)
    register_errorhandlers(app)
    register_commands(app)
    app.extensions["sentinel.started_at"] = datetime.datetime.now().replace(microsecond=0)
    app.extensions["sentinel.pid"] = os.getpid()
    return app


def create_app_or_exit(config=None):
    """create_app() for entry points: a bad configuration or an unreachable
    state database stops the process with one line naming it, not a traceback."""
    try:
        return create_app(config)
    except (config_module.ConfigError, NotReady) as exc:
        print(f"sentinel: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


class CookieSessions(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, at no cost to requests without the cookie.

    API calls never carry the UI's cookie, yet Flask would build a signing
    serializer to open and save an empty session on each of them (~0.1 ms).
    """

    def open_session(self, app, request):
        if not request.cookies.get(self.get_cookie_name(app)):
            return self.session_class()
        return super().open_session(app, request)

    def save_session(self, app, session, response):
        if not session and not session.modified and not session.accessed:
            return
        super().save_session(app, session, response)


def configure_app(app, settings):
    app.config.update(
        SENTINEL=settings,
        SECRET_KEY=settings["secret_key"],
        MAX_CONTENT_LENGTH=settings["max_body_size"],
        SESSION_COOKIE_NAME="sentinel",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings["cookie_secure"],
        PERMANENT_SESSION_LIFETIME=datetime.timedelta(seconds=settings["session_timeout"]),
        JSON_SORT_KEYS=False,
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the signed-in session
    )
    app.json.sort_keys = False
    app.session_interface = CookieSessions()
    if settings["trusted_proxies"]:
        count = settings["trusted_proxies"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=count, x_proto=count, x_host=count)


def register_state(app):
    """Bind the models to the configured state database and migrate it."""
    settings = app.config["SENTINEL"]
    db = state.bind(settings["database"])
    try:
        state.migrate(db, settings["state_dir"])
    except Exception as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise NotReady(f"state database unavailable: {reason}") from exc
    finally:
        # Close every pooled connection: gunicorn forks its workers after this.
        db.close_all()

    @app.teardown_appcontext
    def release_state_connection(exc):
        if not state.database.is_closed():
            state.database.close()


def register_extensions(app):
    from .extensions import csrf, login_manager, postgres, redis
    from .sessions import RecentlyChecked

    app.extensions["sentinel.recent_sessions"] = RecentlyChecked()
    postgres.init_app(app)
    redis.init_app(app)
    csrf.init_app(app)
    login_manager.init_app(app)


def register_blueprints(app):
    from .api import activity, administration, core, dashboard, monitoring
    from .extensions import csrf
    from .web import activity as activity_page
    from .web import administration as administration_page
    from .web import dashboard as dashboard_page
    from .web import monitoring as monitoring_page
    from .web import views

    plugins = (activity, administration, dashboard, monitoring)
    app.extensions["sentinel.plugins"] = [plugin.PLUGIN for plugin in plugins]
    for module in (core, *plugins):
        csrf.exempt(module.blueprint)  # API callers authenticate by header, not cookie
        app.register_blueprint(module.blueprint)

    pages = (dashboard_page, activity_page, monitoring_page, administration_page)
    app.extensions["sentinel.nav"] = [("Home", "web.home")] + [page.NAV for page in pages]
    app.register_blueprint(views.blueprint)
    app.register_blueprint(views.root)
    for page in pages:
        app.register_blueprint(page.blueprint)


def register_errorhandlers(app):
    from .api import errors

    errors.register(app)


def register_commands(app):
    from . import cli

    cli.register(app)
