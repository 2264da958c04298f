"""Monitoring plugin API."""

from flask import Blueprint

PLUGIN = "monitoring"
blueprint = Blueprint(PLUGIN, __name__, url_prefix="/monitoring")
