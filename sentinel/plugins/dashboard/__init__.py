"""The dashboard plugin: the instance's and the host's figures, collected
every few seconds and read on demand."""

from .. import Periodic, Plugin
from . import api, tasks, web

PLUGIN = Plugin(
    name="dashboard",
    api=api.blueprint,
    web=web.blueprint,
    nav="Dashboard",
    periodic=(Periodic(tasks.collect, interval="dashboard_interval"),),
)
