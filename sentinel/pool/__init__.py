"""The pool of remote PostgreSQL instances monitored without an agent on
them, seen through the Datasentinel, pgwatch and Sequin APIs and its own
pages. Each dialect is a module holding its mapping onto the one source
model (sentinel.pool.store) and its blueprint."""

import importlib

DIALECTS = ["datasentinel", "pgwatch", "sequin"]


def blueprints():
    """(API blueprints: the dialects' and /metrics for Prometheus, the pages' blueprint)."""
    apis = [importlib.import_module(f"{__name__}.{name}").blueprint for name in DIALECTS]
    from . import prometheus, web

    apis.append(prometheus.blueprint)
    return apis, web.blueprint
