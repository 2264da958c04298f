"""The maintenance plugin: sizes and bloat, and VACUUM, ANALYZE, REINDEX now or scheduled."""

from .. import Periodic, Plugin
from . import api, tasks, web

PLUGIN = Plugin(
    name="maintenance",
    api=api.blueprint,
    web=web.blueprint,
    nav="Maintenance",
    periodic=(Periodic(tasks.reconcile, interval=10, timeout=60),),
    tasks=(tasks.run_job,),
)
