"""The pgconf plugin: PostgreSQL's settings, read and changed with ALTER SYSTEM,
with the history of their changes."""

from .. import Plugin
from . import api

PLUGIN = Plugin(name="pgconf", api=api.blueprint)
