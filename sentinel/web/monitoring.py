"""The Monitoring page: one chart per probe over the collector's kept runs."""

from flask import Blueprint, current_app, jsonify, render_template, request
from flask_login import login_required

from .. import monitoring

blueprint = Blueprint("web_monitoring", __name__, url_prefix="/ui/monitoring")
NAV = ("Monitoring", "web_monitoring.page")


@blueprint.get("/")
@login_required
def page():
    return render_template(
        "monitoring.html",
        charts=monitoring.CHARTS,
        interval=current_app.config["SENTINEL"]["monitoring_interval"],
    )


@blueprint.get("/data")
@login_required
def data():
    """Chart series of the kept runs; ?after=<run id> for the runs since."""
    after = monitoring.after_run(request.args.get("after"))
    return jsonify(monitoring.charts_of_kept_runs(after))
