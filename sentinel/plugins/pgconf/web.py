"""The Configuration page: the settings by category, searchable, edited in
place by admins; pending restarts, errors in the files and the history."""

from flask import Blueprint, jsonify, render_template
from flask_login import current_user

from ...auth.access import signed_in
from ...contract import BOOLEAN, HTML, STRING, array, describe, record
from ...extensions import postgres
from . import pgconf
from .api import CHANGE_ERRORS, CHANGED, CHANGES, FILES, HISTORY_ITEM, POSTGRES_ERRORS, SETTING
from .api import identity as instance

blueprint = Blueprint(
    "pgconf_ui",
    __name__,
    url_prefix="/ui/pgconf",
    template_folder="templates",
    static_folder="static",
)

PAGE_DATA = record(
    settings=array({**SETTING, "properties": {**SETTING["properties"], "category": STRING}}),
    restart_pending=BOOLEAN,
    files=FILES,
    history=array(HISTORY_ITEM),
)


def page_data():
    """Everything the page shows, read at once: one look at pg_settings for the
    settings, the pending restarts and the outside changes of the history."""
    rows = pgconf.read_settings(postgres.pool)
    pgconf.observe(rows, instance())
    return {
        "settings": rows,
        "restart_pending": any(row["pending_restart"] for row in rows),
        "files": pgconf.file_settings(postgres.pool),
        "history": pgconf.history(postgres.pool, instance(), rows),
    }


@blueprint.get("/")
@signed_in
@describe("The Configuration page", answers={200: (HTML, STRING)})
def page():
    return render_template("pgconf.html")


@blueprint.get("/data")
@signed_in
@describe(
    "The settings, the configuration files' lines and the history of changes, read at once",
    answers={200: PAGE_DATA},
    errors=POSTGRES_ERRORS,
)
def data():
    return jsonify(page_data())


@blueprint.post("/settings")
@signed_in(admin=True)
@describe(
    "Change settings from the page, as POST /pgconf/configuration does",
    body=CHANGES,
    answers={200: CHANGED},
    errors=CHANGE_ERRORS,
)
def change(body):
    changed = pgconf.apply(postgres.pool, body["settings"], current_user.username, instance())
    return jsonify(settings=changed)


@blueprint.post("/history/<int:change_id>/revert")
@signed_in(admin=True)
@describe(
    "Revert a change from the page",
    answers={200: CHANGED},
    errors=(404, *CHANGE_ERRORS),
)
def revert(change_id):
    changed = pgconf.revert(postgres.pool, change_id, current_user.username, instance())
    return jsonify(settings=changed)
