"""The Administration page."""

from flask import Blueprint, render_template
from flask_login import login_required

blueprint = Blueprint("web_administration", __name__, url_prefix="/ui/administration")
NAV = ("Administration", "web_administration.page")


@blueprint.get("/")
@login_required
def page():
    return render_template("administration.html")
