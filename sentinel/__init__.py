"""Sentinel: a PostgreSQL agent serving the temBoard agent API, with a web UI."""

import datetime
import os
import sys

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from . import config as config_module
from . import logs, state
from .errors import NotReady
from .jsonencoding import OrjsonProvider
from .pool import secrets as pool_secrets
from .version import __version__

__all__ = ["__version__", "create_app", "create_app_or_exit"]


def create_app(config=None, plugins=None):
    """Build the application. `config` overrides settings (tests use it);
    `plugins` names the plugins to serve (default: all of sentinel.plugins).

    Nothing here runs at import time; the factory reads the configuration,
    brings the state database's schema up to date and binds everything.
    """
    from . import plugins as plugins_package

    settings = config_module.load(overrides=config)
    app = Flask(
        __name__,
        template_folder=str(config_module.resource_dir("templates")),
        static_folder=str(config_module.resource_dir("static")),
    )
    app.json = OrjsonProvider(app)
    configure_app(app, settings)
    logs.configure(settings["log_level"], settings["log_format"])
    register_state(app)
    register_extensions(app)
    register_blueprints(app)
    register_plugins(app, plugins_package.load(plugins))
    register_pool(app)
    register_errorhandlers(app)
    register_security_headers(app)
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
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the signed-in session
    )
    if settings["trusted_proxies"]:
        count = settings["trusted_proxies"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=count, x_proto=count, x_host=count)


def register_state(app):
    """Bind the models to the configured state database and migrate it, and
    take the key the pool's passwords in it are encrypted with."""
    settings = app.config["SENTINEL"]
    pool_secrets.bind(settings)
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

    postgres.init_app(app)
    redis.init_app(app)
    csrf.init_app(app)
    login_manager.init_app(app)


def _api(app, blueprint):
    from .extensions import csrf

    csrf.exempt(blueprint)  # API callers authenticate by header, not cookie
    app.register_blueprint(blueprint)


def register_blueprints(app):
    """What every Sentinel serves: sign-in, the core API, the home page."""
    from .auth import api as auth_api
    from .auth import web as auth_web
    from .core import api as core_api
    from .core import web as core_web

    _api(app, auth_api.blueprint)
    _api(app, core_api.blueprint)
    app.register_blueprint(auth_web.blueprint)
    app.register_blueprint(core_web.blueprint)


def register_pool(app):
    """The pool's three API dialects and its pages, after the plugins' pages
    in the navigation."""
    from . import pool

    apis, web = pool.blueprints()
    for blueprint in apis:
        _api(app, blueprint)
    app.register_blueprint(web)
    app.extensions["sentinel.nav"].insert(-1, ("Sources", f"{web.name}.page"))


def register_plugins(app, plugins):
    """Each plugin's API and page, and the navigation they make."""
    app.extensions["sentinel.plugins"] = plugins
    nav = [("Home", "home.home")]
    for plugin in plugins:
        _api(app, plugin.api)
        if plugin.web is not None:
            app.register_blueprint(plugin.web)
        if plugin.nav:
            nav.append((plugin.nav, f"{plugin.web.name}.page"))
    nav.append(("API", "home.api_reference"))
    app.extensions["sentinel.nav"] = nav


# Pages load scripts and styles from Sentinel's own static files only: no
# inline script, style or event handler, so injected markup cannot run. Pico
# and Swagger UI draw their icons from data: SVG images.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def register_security_headers(app):
    """Every answer, pages, API, errors and static files alike, carries them."""

    @app.after_request
    def add_security_headers(response):
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response


def register_errorhandlers(app):
    from . import answers

    answers.register(app)
