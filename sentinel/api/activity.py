"""Activity plugin API."""

from flask import Blueprint

PLUGIN = "activity"
blueprint = Blueprint(PLUGIN, __name__, url_prefix="/activity")
