"""Administration plugin API."""

from flask import Blueprint

PLUGIN = "administration"
blueprint = Blueprint(PLUGIN, __name__, url_prefix="/administration")
