"""Gunicorn's settings for `sentinel serve`, from Sentinel's own configuration.

`sentinel serve` runs `gunicorn -c python:sentinel.gunicorn_conf`, so a bad
configuration stops gunicorn here with one line naming the setting.
"""

import gc as _gc
import logging as _logging
import os as _os
import socket as _socket
import ssl as _ssl
import struct as _struct
import sys

from sentinel import config as _config
from sentinel import logs as _logs
from sentinel import tls as _tls
from sentinel import version as _version

try:
    _settings = _config.load()
except _config.ConfigError as exc:
    print(f"sentinel: {exc}", file=sys.stderr)
    sys.exit(2)

# A client that sends nothing more of its request, or reads nothing of the
# answer, for this long (SENTINEL_CLIENT_TIMEOUT, 10 s by default) is dropped,
# freeing its thread (one of only 8). Ample for a live client, whose lost
# packets TCP resends within a few seconds.
CLIENT_TIMEOUT = _settings["client_timeout"]


def _listening_socket(address):
    """The socket gunicorn listens on, made here so that every connection it
    accepts inherits SO_RCVTIMEO and SO_SNDTIMEO from it (gunicorn has no
    setting that bounds reading a request): a stalled recv() then fails with
    EAGAIN and gunicorn drops the connection. Returns its file descriptor."""
    host, _, port = address.rpartition(":")
    host = host[1:-1] if host.startswith("[") else host
    family = _socket.AF_INET6 if ":" in host else _socket.AF_INET
    sock = _socket.socket(family, _socket.SOCK_STREAM)
    timeout = _struct.pack("ll", CLIENT_TIMEOUT, 0)
    sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_REUSEADDR, 1)
    sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_RCVTIMEO, timeout)
    sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_SNDTIMEO, timeout)
    try:
        sock.bind((host, int(port)))
    except OSError as exc:
        sock.close()
        print(f"sentinel: SENTINEL_BIND: cannot listen on {address}: {exc}", file=sys.stderr)
        sys.exit(2)
    return sock.detach()


# After `kill -USR2` the new master inherits the old one's listening sockets
# (GUNICORN_FD), timeouts included, and must not bind the address again.
if "GUNICORN_FD" in _os.environ:
    bind = _settings["bind"]
else:
    bind = f"fd://{_listening_socket(_settings['bind'])}"

# HTTPS served by gunicorn itself (the temBoard UI calls its agents over
# https:// only), HTTP/1.1 keep-alive kept.
if _settings["https"]:
    if _settings["tls"] == "self-signed":
        _tls.ensure_self_signed(_settings["tls_cert"], _settings["tls_key"], _settings["hostname"])
    certfile = _settings["tls_cert"]
    keyfile = _settings["tls_key"]


class _BoundedSSLSocket(_ssl.SSLSocket):
    """A TLS connection whose blocking reads and writes give up after
    CLIENT_TIMEOUT: Python's ssl module retries a read that SO_RCVTIMEO cuts
    short, so over TLS the bound has to be the socket's own timeout."""

    def settimeout(self, value):
        super().settimeout(CLIENT_TIMEOUT if value is None else value)

    def setblocking(self, flag):
        self.settimeout(None if flag else 0.0)


def ssl_context(conf, default_ssl_context_factory):
    """gunicorn's TLS context, handing out bounded sockets."""
    context = default_ssl_context_factory()
    context.sslsocket_class = _BoundedSSLSocket
    return context


# Two processes, so one busy or restarting worker never stalls the API, with a
# few threads each: most of a request's time is spent waiting on PostgreSQL or
# the state database, not on the CPU. Every process holds at most pg_pool_size
# connections to the watched instance, so 2 workers stay well under 10.
workers = 2
threads = 4
worker_class = "gthread"

# Load the application once in the master: configuration or state-database
# problems stop the service before any worker starts, and workers fork ready.
preload_app = True

# A request waits for PostgreSQL at most statement_timeout (5 s by default);
# /administration/control may wait up to a minute for pg_ctl. 90 s is past both,
# so only a truly stuck worker is killed and replaced.
timeout = 90
# Time given to in-flight requests on stop or restart before they are cut.
graceful_timeout = 30
# Keep-alive lets API clients reuse one connection for many calls.
keepalive = 5

# Errors on stderr for journald, in Sentinel's format. The access log is off
# unless SENTINEL_ACCESS_LOG is set: dashboards poll every few seconds (tens
# of thousands of lines a day), and every change an API call makes is logged
# by Sentinel itself.
accesslog = "-" if _settings["access_log"] else None
errorlog = "-"
loglevel = _settings["log_level"].lower()
logconfig_dict = _logs.gunicorn_logconfig(
    _settings["log_level"], _settings["log_format"], _settings["access_log"]
)
access_log_format = 'remote=%(h)s method=%(m)s path="%(U)s" status=%(s)s bytes=%(B)s ms=%(M)s'
proc_name = "sentinel"
# gunicornc's control socket, one per instance (so templated units don't collide).
control_socket = f"{_settings['state_dir']}/gunicorn.ctl"


def when_ready(server):
    """Once listening: what runs, where, and with which settings (no secrets)."""
    log = _logging.getLogger("sentinel")
    shown = _config.printable(_settings)
    log.info(
        "event=service_started version=%s pid=%s bind=%s https=%s hostname=%s pg=%s"
        " redis=%s state=%s",
        _version.__version__,
        server.pid,
        _settings["bind"],
        _settings["https"],
        _settings["hostname"],
        shown["pg_dsn"] or "(libpq defaults)",
        shown["redis_url"],
        shown["database"],
    )
    if _settings["tls"] == "self-signed":
        log.info("event=tls_certificate sha256=%s", _tls.fingerprint(_settings["tls_cert"]))
    for warning in _settings["warnings"]:
        log.warning("event=configuration_warning message=%r", warning)


def pre_fork(server, worker):
    """The loaded application's objects (about 75,000) leave the garbage
    collector's watch before a worker forks, as Python's gc.freeze() documents
    for pre-fork servers: a worker's collections then scan only what its
    requests made. `make bench`: the schema page of 10,000 tables took 1.08 s
    with the collector scanning them all, 0.94 s frozen (target 1 s)."""
    _gc.freeze()


def on_reload(server):
    """A reload (HUP) applies logconfig_dict again, which empties the root
    logger and gunicorn's two: Sentinel's own lines would stop, on stderr and
    on the live log stream. Its handlers go back on them."""
    _logs.reattach(_settings["log_level"])


def on_exit(server):
    _logging.getLogger("sentinel").info("event=service_stopped pid=%s", server.pid)
