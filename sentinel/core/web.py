"""The web UI's home page, its API reference page, and / sending browsers there."""

from flask import Blueprint, current_app, redirect, render_template, url_for

from ..auth.access import settings, signed_in
from ..contract import HTML, STRING, describe
from ..extensions import postgres
from . import instance, notifications

blueprint = Blueprint("home", __name__)

PAGE = {200: (HTML, STRING)}


@blueprint.app_context_processor
def layout_context():
    return {"nav": current_app.extensions["sentinel.nav"]}


@blueprint.get("/")
@describe("Sends browsers to the web UI", answers={302: None})
def index():
    return redirect(url_for("home.home"))


@blueprint.get("/ui/")
@signed_in
@describe("Home: the instance at a glance and the latest notifications", answers=PAGE)
def home():
    plugins = current_app.extensions["sentinel.plugins"]
    facts = instance.discover(postgres.pool, settings(), plugins)
    return render_template("home.html", facts=facts, notifications=notifications.recent(limit=20))


@blueprint.get("/ui/api")
@signed_in
@describe("The API reference, rendered from /openapi.json", answers=PAGE)
def api_reference():
    return render_template("api.html")
