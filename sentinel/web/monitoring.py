"""The Monitoring page."""

from flask import Blueprint, render_template
from flask_login import login_required

blueprint = Blueprint("web_monitoring", __name__, url_prefix="/ui/monitoring")
NAV = ("Monitoring", "web_monitoring.page")


@blueprint.get("/")
@login_required
def page():
    return render_template("monitoring.html")
