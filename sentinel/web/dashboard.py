"""The Dashboard page."""

from flask import Blueprint, render_template
from flask_login import login_required

blueprint = Blueprint("web_dashboard", __name__, url_prefix="/ui/dashboard")
NAV = ("Dashboard", "web_dashboard.page")


@blueprint.get("/")
@login_required
def page():
    return render_template("dashboard.html")
