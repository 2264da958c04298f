"""The statements plugin: pg_stat_statements read now, and its history kept
by a periodic snapshot as the deltas of the statements that moved."""

from .. import Periodic, Plugin
from . import api, tasks, web

PLUGIN = Plugin(
    name="statements",
    api=api.blueprint,
    web=web.blueprint,
    nav="Statements",
    periodic=(Periodic(tasks.snapshot, interval="statements_interval"),),
    min_pg_version=130000,
)
