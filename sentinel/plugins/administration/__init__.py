"""The administration plugin: start, stop, restart and reload PostgreSQL."""

from .. import Plugin
from . import api, web

PLUGIN = Plugin(name="administration", api=api.blueprint, web=web.blueprint, nav="Administration")
