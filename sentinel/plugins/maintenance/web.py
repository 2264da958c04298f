"""The Maintenance pages: databases, schemas and tables with their sizes and
bloat, VACUUM / ANALYZE / REINDEX now or later, and the jobs."""

from flask import Blueprint, render_template

from ...auth.access import signed_in
from ...contract import HTML, STRING, describe

blueprint = Blueprint(
    "maintenance_ui",
    __name__,
    url_prefix="/ui/maintenance",
    template_folder="templates",
    static_folder="static",
)


@blueprint.get("/")
@signed_in
@describe("The Maintenance page", answers={200: (HTML, STRING)})
def page():
    return render_template("maintenance.html")
