"""The monitoring plugin: the agent's probes, read on demand or collected
periodically with their history, and charts of that history."""

from .. import Periodic, Plugin
from . import api, tasks, web

PLUGIN = Plugin(
    name="monitoring",
    api=api.blueprint,
    web=web.blueprint,
    nav="Monitoring",
    periodic=(Periodic(tasks.collect, interval="monitoring_interval"),),
)
