"""Logging: key=value lines on stderr for journald, or one JSON object a line
for log shippers (SENTINEL_LOG_FORMAT=json).

INFO is what an operator needs: starts and stops, the configuration in use,
changes made through the API, failed logins, failed jobs, dependencies lost
and back. What repeats with every request or every collector tick is DEBUG,
and the job queue's own per-job lines are shown at DEBUG only.
"""

import json
import logging
import sys

TEXT_FORMAT = "%(asctime)s level=%(levelname)s logger=%(name)s %(message)s"
# Libraries whose INFO lines repeat for every job or every request.
CHATTY = ("rq.worker", "rq.job", "rq.scheduler", "rq.cron", "peewee")


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message (and exception)."""

    def format(self, record):
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def formatter(log_format):
    return JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)


def quiet_level(level):
    """The level for the chatty libraries: theirs at DEBUG, warnings otherwise."""
    return "DEBUG" if level == "DEBUG" else "WARNING"


# {logger name: handlers} Sentinel added to loggers it does not configure
# itself: gunicorn applies its logging configuration again on a reload (HUP),
# which takes every handler off those loggers, and reattach() puts them back.
_added = {}


def _add(logger_name, handler):
    logging.getLogger(logger_name).addHandler(handler)
    _added.setdefault(logger_name, []).append(handler)


def configure(level, log_format="text"):
    root = logging.getLogger()
    root.setLevel(level)
    ours = [handler for handler in root.handlers if getattr(handler, "sentinel", False)]
    if not ours:
        handler = logging.StreamHandler(sys.stderr)
        handler.sentinel = True
        _add("", handler)
        ours = [handler]
    for handler in ours:
        handler.setFormatter(formatter(log_format))
    for name in CHATTY:
        logging.getLogger(name).setLevel(quiet_level(level))


# The loggers every line Sentinel logs goes through: the root, and gunicorn's
# own two, which do not pass their lines on to it.
LINE_LOGGERS = ("", "gunicorn.error", "gunicorn.access")


def attach(handler, log_format):
    """Send every line Sentinel logs to `handler` too, formatted as on stderr
    (the live log stream's publisher, for one). A handler of the same name
    attached before, by an application built earlier in this process, is
    replaced and closed."""
    if not handler.name:
        raise ValueError("an attached handler needs a name, to be replaced by name")
    handler.setFormatter(formatter(log_format))
    loggers = [logging.getLogger(name) for name in LINE_LOGGERS]
    replaced = {old for logger in loggers for old in logger.handlers if old.name == handler.name}
    for name, logger in zip(LINE_LOGGERS, loggers, strict=True):
        for old in replaced:
            logger.removeHandler(old)
        _added[name] = [kept for kept in _added.get(name, []) if kept not in replaced]
        _add(name, handler)
    for old in replaced:
        old.close()


def reattach(level):
    """Put back the handlers Sentinel added, and the root's level, after
    gunicorn configured its logging again (on_reload)."""
    logging.getLogger().setLevel(level)
    for name, handlers in _added.items():
        logger = logging.getLogger(name)
        for handler in handlers:
            if handler not in logger.handlers:
                logger.addHandler(handler)


class ClientTimedOut(logging.Filter):
    """gunicorn's error and traceback for a connection it dropped because the
    client stopped sending its request, or reading the answer, for the socket's
    timeout (gunicorn_conf.CLIENT_TIMEOUT) become one INFO line: the client's
    doing, not a fault of the service."""

    def filter(self, record):
        error = record.exc_info[1] if record.exc_info else None
        if record.msg != "Socket error processing request." or not isinstance(
            error, BlockingIOError | TimeoutError
        ):
            return True
        record.msg, record.args = "event=client_timed_out", ()
        record.exc_info = record.exc_text = None
        record.levelno, record.levelname = logging.INFO, "INFO"
        return logging.getLogger(record.name).isEnabledFor(logging.INFO)


def gunicorn_logconfig(level, log_format, access_log=False):
    """gunicorn's logging in the same format as Sentinel's, on stderr."""
    if log_format == "json":
        sentinel_format = {"()": "sentinel.logs.JsonFormatter"}
    else:
        sentinel_format = {"format": TEXT_FORMAT}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"sentinel": sentinel_format},
        "filters": {"client_timed_out": {"()": "sentinel.logs.ClientTimedOut"}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "sentinel",
                "stream": "ext://sys.stderr",
            }
        },
        # Sentinel's own handler goes on the root logger when the app is built.
        "root": {"level": level, "handlers": []},
        "loggers": {
            "gunicorn.error": {
                "level": level,
                "handlers": ["stderr"],
                "filters": ["client_timed_out"],
                "propagate": False,
            },
            "gunicorn.access": {
                "level": "INFO" if access_log else "WARNING",
                "handlers": ["stderr"],
                "propagate": False,
            },
        },
    }
