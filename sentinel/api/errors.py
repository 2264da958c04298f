"""One place where errors become answers: JSON {"error": ...} for the API,
an HTML page for the web UI (paths under /ui/), decided from the path."""

import logging

import peewee
from flask import jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from .. import errors

logger = logging.getLogger(__name__)

STATUS = {
    errors.Invalid: 400,
    errors.BadJSON: 400,
    errors.Unauthorized: 401,
    errors.NotFound: 404,
    errors.Malformed: 406,
    errors.NotSent: 406,
    errors.Conflict: 409,
    errors.Throttled: 429,
    errors.PostgresUnavailable: 503,
    errors.NotReady: 503,
    errors.PostgresTimeout: 504,
}
HTTP_MESSAGES = {
    400: "Bad request.",
    404: "URL not found.",
    405: "Method not allowed.",
    413: "Request body too large.",
}
UI_PREFIXES = ("/ui/", "/static/")


def wants_html():
    """HTML for the web UI's pages; JSON for the API and for the UI's own
    JSON calls (which do not accept text/html)."""
    in_ui = request.path == "/ui" or request.path.startswith(UI_PREFIXES)
    return in_ui and request.accept_mimetypes.accept_html


def error_response(status, message, headers=None):
    if wants_html():
        body = render_template("error.html", status=status, message=message)
        return body, status, headers or {}
    return jsonify(error=message), status, headers or {}


def handle_sentinel_error(exc):
    status = next(code for kind, code in STATUS.items() if isinstance(exc, kind))
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, errors.Throttled) else None
    return error_response(status, exc.message, headers)


def handle_http_error(exc):
    if isinstance(exc, CSRFError):
        return error_response(400, "The form has expired; reload the page and try again.")
    message = HTTP_MESSAGES.get(exc.code, exc.description)
    headers = (
        {"Allow": ", ".join(exc.valid_methods)} if getattr(exc, "valid_methods", None) else None
    )
    return error_response(exc.code, message, headers)


def handle_state_outage(exc):
    # The state database (SQLite busy past its timeout, PostgreSQL down): the
    # request changed nothing, and the next one works once it is back.
    logger.warning("event=state_database_error error=%s", str(exc).strip().splitlines()[:1])
    return error_response(503, "Sentinel's state database is unavailable; retry shortly.")


def handle_bug(exc):
    logger.exception("event=unhandled_error path=%s", request.path)
    return error_response(500, "Internal error.")


def register(app):
    app.register_error_handler(errors.SentinelError, handle_sentinel_error)
    app.register_error_handler(HTTPException, handle_http_error)
    app.register_error_handler(peewee.OperationalError, handle_state_outage)
    app.register_error_handler(peewee.InterfaceError, handle_state_outage)
    app.register_error_handler(Exception, handle_bug)
