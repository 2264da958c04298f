"""Gunicorn settings for Sentinel (`gunicorn -c gunicorn.conf.py wsgi:app`).

The listening address comes from Sentinel's own configuration (SENTINEL_BIND),
so a bad configuration stops gunicorn here with one line naming the setting.
"""

import sys

from sentinel import config as _config

try:
    _settings = _config.load()
except _config.ConfigError as exc:
    print(f"sentinel: {exc}", file=sys.stderr)
    sys.exit(2)

bind = _settings["bind"]

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

# Errors on stderr for journald. The access log is off unless SENTINEL_ACCESS_LOG
# is set: dashboards poll every few seconds (tens of thousands of lines a day),
# each line costs ~0.15 ms of the request, and every change an API call makes
# is in Sentinel's notifications already.
accesslog = "-" if _settings["access_log"] else None
errorlog = "-"
access_log_format = 'remote=%(h)s method=%(m)s path="%(U)s" status=%(s)s bytes=%(B)s ms=%(M)s'
proc_name = "sentinel"
# gunicornc's control socket, one per instance (so templated units don't collide).
control_socket = f"{_settings['state_dir']}/gunicorn.ctl"
