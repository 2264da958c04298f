"""The Activity page."""

from flask import Blueprint, render_template
from flask_login import login_required

blueprint = Blueprint("web_activity", __name__, url_prefix="/ui/activity")
NAV = ("Activity", "web_activity.page")


@blueprint.get("/")
@login_required
def page():
    return render_template("activity.html")
