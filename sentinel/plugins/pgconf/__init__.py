"""The pgconf plugin: PostgreSQL's settings, read and changed with ALTER SYSTEM."""

from flask import Blueprint

from .. import Plugin

PLUGIN = Plugin(name="pgconf", api=Blueprint("pgconf", __name__, url_prefix="/pgconf"))
