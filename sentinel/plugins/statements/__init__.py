"""The statements plugin: pg_stat_statements, now and over time."""

from flask import Blueprint

from .. import Plugin

PLUGIN = Plugin(name="statements", api=Blueprint("statements", __name__, url_prefix="/statements"))
