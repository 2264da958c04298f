"""The activity plugin: backends, lock waits and blockers, the lock tree, and
cancelling or terminating backends."""

from .. import Plugin
from . import api, web

PLUGIN = Plugin(name="activity", api=api.blueprint, web=web.blueprint, nav="Activity")
