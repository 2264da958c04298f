"""The pgconf plugin: PostgreSQL's settings, read and changed with ALTER SYSTEM,
with the history of their changes, and the Configuration page."""

from .. import Periodic, Plugin
from . import api, tasks, web

PLUGIN = Plugin(
    name="pgconf",
    api=api.blueprint,
    web=web.blueprint,
    nav="Configuration",
    periodic=(Periodic(tasks.watch, interval=tasks.WATCH_INTERVAL),),
)
