"""The Dashboard page: charts of the collected samples, refreshed in place."""

from flask import Blueprint, current_app, jsonify, render_template, request
from flask_login import login_required

from .. import dashboard

blueprint = Blueprint("web_dashboard", __name__, url_prefix="/ui/dashboard")
NAV = ("Dashboard", "web_dashboard.page")


def settings():
    return current_app.config["SENTINEL"]


@blueprint.get("/")
@login_required
def page():
    return render_template(
        "dashboard.html",
        facts=dashboard.headline(dashboard.last_sample()),
        config=dashboard.config(settings()),
    )


@blueprint.get("/data")
@login_required
def data():
    """The chart points of the samples taken after ?since= (epoch seconds)."""
    since = dashboard.parse_since(request.args.get("since"))
    return jsonify(points=dashboard.chart_points(settings(), since))
