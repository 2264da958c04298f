"""The maintenance plugin: sizes and bloat, and VACUUM, ANALYZE, REINDEX now or scheduled."""

from flask import Blueprint

from .. import Plugin

PLUGIN = Plugin(
    name="maintenance", api=Blueprint("maintenance", __name__, url_prefix="/maintenance")
)
