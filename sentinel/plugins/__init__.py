"""Sentinel's plugins, each a package of this folder, and the one list of them.

A plugin package declares itself in its `__init__.py` as `PLUGIN = Plugin(...)`:
its name (what /discover lists), its API blueprint, its web page's blueprint
and navigation label, its periodic jobs, the jobs it enqueues on demand and
the oldest PostgreSQL it supports.
create_app(), the navigation, the worker's schedule and /discover are all
built from PLUGINS: adding a plugin is its folder and one line here.
"""

import importlib
from dataclasses import dataclass

from flask import Blueprint

PLUGINS = [
    "activity",
    "administration",
    "dashboard",
    "maintenance",
    "monitoring",
    "pgconf",
    "statements",
]


@dataclass(frozen=True)
class Periodic:
    """A job the worker's scheduler enqueues every `interval` seconds: a
    number, or the name of the setting that holds it. `timeout` is how long a
    run may take (default: its interval)."""

    func: object
    interval: int | str
    timeout: int | None = None

    @property
    def name(self):
        return f"{self.func.__module__}.{self.func.__name__}"

    def seconds(self, settings):
        return settings[self.interval] if isinstance(self.interval, str) else self.interval


@dataclass(frozen=True)
class Plugin:
    name: str
    api: Blueprint
    web: Blueprint | None = None
    nav: str | None = None  # label of the web page (its endpoint is `<web>.page`)
    periodic: tuple = ()
    tasks: tuple = ()  # functions enqueued on demand (the worker runs no others)
    min_pg_version: int = 100000  # server_version_num


def load(names=None):
    """The declared plugins, in the order of PLUGINS."""
    return [importlib.import_module(f"{__name__}.{name}").PLUGIN for name in names or PLUGINS]
