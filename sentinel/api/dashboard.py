"""Dashboard plugin API."""

from flask import Blueprint

PLUGIN = "dashboard"
blueprint = Blueprint(PLUGIN, __name__, url_prefix="/dashboard")
