"""PgConf plugin API: the settings by category, their pending restarts and
configuration files, changing them with ALTER SYSTEM, and the history of changes."""

from urllib.parse import unquote_plus

from flask import Blueprint, g, jsonify, request

from ...auth.access import session_required, settings
from ...contract import BOOLEAN, INTEGER, NUMBER, STRING, array, describe, nullable, record
from ...extensions import postgres
from . import pgconf

blueprint = Blueprint("pgconf", __name__, url_prefix="/pgconf")

TEXT = nullable(STRING)
SETTING = record(
    context=STRING,
    enumvals=TEXT,
    max_val=TEXT,
    vartype=STRING,
    boot_val=TEXT,
    reset_val=TEXT,
    unit=TEXT,
    desc=STRING,
    name=STRING,
    min_val=TEXT,
    setting=TEXT,
    setting_raw=TEXT,
    pending_restart=BOOLEAN,
    source=TEXT,
    sourcefile=TEXT,
    sourceline=nullable(INTEGER),
)
CATEGORIES = array(record(category=STRING, rows=array(SETTING)))
FILTER = {"type": "string", "minLength": 1, "maxLength": 200}
CHANGES = record(
    settings={
        "type": "array",
        "maxItems": 1000,
        "items": record(name={"type": "string", "minLength": 1, "maxLength": 200}, setting=STRING),
    }
)
CHANGED = record(
    settings=array(
        record(name=STRING, setting=STRING, previous_setting=TEXT, restart=BOOLEAN),
    )
)
FILE_LINE = record(
    file=TEXT,
    line=nullable(INTEGER),
    seqno=nullable(INTEGER),
    name=TEXT,
    setting=TEXT,
    applied=BOOLEAN,
    error=TEXT,
    reason=TEXT,
    broken=BOOLEAN,
)
FILES = record(readable=BOOLEAN, valid=nullable(BOOLEAN), lines=array(FILE_LINE))
HISTORY_ITEM = record(
    id=INTEGER,
    at=NUMBER,
    username=TEXT,
    outside=BOOLEAN,
    name=STRING,
    previous=TEXT,
    value=STRING,
    state={"enum": ["applied", "pending_restart"]},
)
HISTORY = record(changes=array(HISTORY_ITEM))
POSTGRES_ERRORS = (503, 504)
CHANGE_ERRORS = (400, 409, *POSTGRES_ERRORS)


def identity():
    return postgres.pool.identity(settings()["hostname"])


@blueprint.get("/configuration")
@session_required
@describe(
    "Every setting, by category then name; with `filter`, those whose name or"
    " description holds it (any case)",
    query={"filter": FILTER},
    answers={200: CATEGORIES},
    errors=POSTGRES_ERRORS,
    description="Values are texts as pg_settings has them; `source`, `sourcefile` and"
    " `sourceline` say where a value comes from. Reading it records the changes made"
    " outside Sentinel since the last look into the history.",
)
def configuration(filter):
    return jsonify(pgconf.configuration(postgres.pool, filter))


@blueprint.get("/configuration/categories")
@session_required
@describe(
    "The categories of settings, sorted",
    answers={200: record(categories=array(STRING))},
    errors=POSTGRES_ERRORS,
)
def categories():
    return jsonify(categories=pgconf.categories(postgres.pool))


def category_name(routed):
    """The category as the client wrote it: `+` is a space (as the temBoard UI
    sends it), `%2B` a plus. The raw path says which; the routed name has
    `%2F` and `%2B` decoded already."""
    raw = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI") or ""
    marker = "/configuration/category/"
    path = raw.split("?", 1)[0]
    if marker in path:
        return unquote_plus(path.split(marker, 1)[1])
    return routed.replace("+", " ")


@blueprint.get("/configuration/category/<path:name>")
@session_required
@describe(
    "The settings of one category (`/` and spaces URL-encoded, `+` for a space too)",
    answers={200: CATEGORIES},
    errors=(404, *POSTGRES_ERRORS),
    description="An unknown category is 404 (the agent answers 200 `[]`).",
)
def category(name):
    return jsonify(pgconf.category(postgres.pool, category_name(name)))


@blueprint.get("/configuration/status")
@session_required
@describe(
    "Whether settings wait for a restart, and which",
    answers={200: record(restart_pending=BOOLEAN, restart_changes=array(SETTING))},
    errors=POSTGRES_ERRORS,
)
def status():
    return jsonify(pgconf.restart_status(postgres.pool))


@blueprint.get("/configuration/files")
@session_required
@describe(
    "The lines of the configuration files as PostgreSQL reads them now, and their errors",
    answers={200: FILES},
    errors=POSTGRES_ERRORS,
    description="From pg_file_settings (superuser or pg_read_all_settings: otherwise"
    " `readable` is false). `valid` is false when a line is `broken` (PostgreSQL could"
    " not use it); `reason` says why a value was refused when Sentinel can tell.",
)
def files():
    return jsonify(pgconf.file_settings(postgres.pool))


@blueprint.post("/configuration")
@session_required(admin=True)
@describe(
    "Change settings with ALTER SYSTEM, then reload: all of them or, if one is refused, none",
    body=CHANGES,
    answers={200: CHANGED},
    errors=CHANGE_ERRORS,
    description="An empty `setting` resets the setting (ALTER SYSTEM RESET). Answers the"
    " settings that changed; `restart` is true for those that take effect at the next"
    " restart. A refused name or value is 400 naming the setting and why.",
)
def change(body):
    return jsonify(settings=pgconf.apply(postgres.pool, body["settings"], g.username, identity()))


@blueprint.get("/configuration/history")
@session_required
@describe(
    "Changes of the settings, newest first: through Sentinel (with who) and outside it",
    answers={200: HISTORY},
    errors=POSTGRES_ERRORS,
    description="A change made outside Sentinel (`outside`, no username) is found by"
    " comparing the settings with the values Sentinel saw last.",
)
def history():
    return jsonify(changes=pgconf.history(postgres.pool, identity()))


@blueprint.post("/configuration/history/<int:change_id>/revert")
@session_required(admin=True)
@describe(
    "Put back the value a change replaced, checked as any change",
    answers={200: CHANGED},
    errors=(404, *CHANGE_ERRORS),
)
def revert(change_id):
    return jsonify(settings=pgconf.revert(postgres.pool, change_id, g.username, identity()))
