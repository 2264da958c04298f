"""The Sources page: the pool's sources with their status, filtered by tag;
admins add and edit them (with a connection test), disable, enable and
delete them. It works through the same store as the three API dialects, so a
source added by any of them shows here."""

import datetime
import functools
import re

from flask import Blueprint, jsonify, render_template, request
from flask_login import current_user

from ..answers import error_body
from ..auth.access import signed_in
from ..contract import (
    BOOLEAN,
    HTML,
    INTEGER,
    JSON,
    NUMBER,
    STRING,
    array,
    describe,
    mapping,
    nullable,
    record,
)
from ..errors import Invalid
from . import catalog, probe, secrets, store
from .models import KINDS, SSLMODES, Source

blueprint = Blueprint(
    "pool_web",
    __name__,
    url_prefix="/ui/sources",
    template_folder="templates",
    static_folder="static",
)

# A failure names the form field at fault, for the page to show it beside it.
FAILURE = record(error=STRING, field=nullable(STRING))
described = functools.partial(describe, error={JSON: FAILURE, HTML: STRING})


def answer_error(status, message, error=None):
    """The one error path of these routes: a browser opening a page gets the
    error page, the page's own calls the message and the field at fault."""
    if request.accept_mimetypes.accept_html:
        return render_template("error.html", status=status, message=message)
    return jsonify(error=message, field=getattr(error, "field", None))


error_body(blueprint, answer_error)

UUID = {
    "type": "string",
    "pattern": "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$",
}
MOMENT = nullable(NUMBER)  # unix seconds
ROW = record(
    id=STRING,
    name=STRING,
    host=STRING,
    port=INTEGER,
    dbname=STRING,
    user=STRING,
    sslmode=STRING,
    tags=mapping(STRING),
    group=STRING,
    kind=STRING,
    preset=nullable(STRING),
    custom_metrics=INTEGER,
    enabled=BOOLEAN,
    connected=nullable(BOOLEAN),
    last_error=nullable(STRING),
    last_collected_at=MOMENT,
    created_at=MOMENT,
    updated_at=MOMENT,
)
# What the form edits: the texts as typed (port and tags are parsed here).
CONNECTION_FIELDS = ("host", "port", "dbname", "user", "password", "sslmode")
# In the form's order: the store names the first value it refuses.
FORM_FIELDS = ("name", "kind", *CONNECTION_FIELDS, "preset", "group", "tags")
FORM = record({name: STRING for name in FORM_FIELDS}, enabled=BOOLEAN)
SOURCE_FORM = record(
    {**ROW["properties"], "password": STRING, "tags_text": STRING},
)
CONNECTION = record(
    {name: STRING for name in CONNECTION_FIELDS},
    optional={"id": UUID},
)
SAVED = record(source=ROW)
# A write without a body still fails 400 when its CSRF token is missing or stale.
NO_BODY_ERRORS = (400, 404)
PORT = re.compile(r"[0-9]{1,5}")


def _moment(value):
    """Unix seconds of a naive UTC datetime of the store."""
    if value is None:
        return None
    return value.replace(tzinfo=datetime.UTC).timestamp()


def row(source):
    """A store dict as the page's list shows it: no password, times in unix seconds."""
    shown = {name: source[name] for name in ROW["required"] if name in source}
    shown["custom_metrics"] = len(source["metrics"])
    for name in ("last_collected_at", "created_at", "updated_at"):
        shown[name] = _moment(source[name])
    return shown


def format_tags(tags):
    """The tags as the form shows them: a `name=value` line each."""
    return "\n".join(f"{name}={value}" for name, value in tags.items())


def parse_tags(text):
    """{name: value} from `name=value` lines; blank lines are skipped, spaces
    around names and values dropped, a value may hold `=`."""
    tags = {}
    for number, line in enumerate(text.splitlines(), 1):
        name, equals, value = line.partition("=")
        name, value = name.strip(), value.strip()
        if not (name or value or equals):
            continue
        if not equals or not name:
            raise Invalid(f"tags: line {number}: expected name=value", field="tags")
        if name in tags:
            raise Invalid(f"tags: line {number}: {name} is given twice", field="tags")
        tags[name] = value
    return tags


def parse_port(text):
    text = text.strip()
    if not PORT.fullmatch(text):
        raise Invalid("port: expected a whole number, such as 5432", field="port")
    return int(text)


def _checked(name, value):
    """A connection value checked by the store's own rule for it."""
    try:
        return store.FIELDS[name](value)
    except ValueError as exc:
        raise Invalid(f"{name}: {exc}", field=name) from None


def parse_form(body, current=None):
    """The store's fields from the form. Tags left as the form showed them
    are not sent (a value the form cannot write back stays as it is); a
    preset chosen replaces custom metric intervals, which it excludes."""
    fields = {name: body[name] for name in FORM_FIELDS}
    fields["port"] = parse_port(body["port"])
    if current is not None and body["tags"] == format_tags(current["tags"]):
        del fields["tags"]
    else:
        fields["tags"] = parse_tags(body["tags"])
    fields["preset"] = body["preset"] or None
    if fields["preset"]:
        fields["metrics"] = {}
    fields["enabled"] = body["enabled"]
    return fields


def connection_of(body):
    """libpq keywords of the connection the form describes; a password left
    as the form showed it (obfuscated) is the stored one of source `id`."""
    fields = {name: _checked(name, body[name]) for name in CONNECTION_FIELDS if name != "port"}
    fields["port"] = _checked("port", parse_port(body["port"]))
    if body.get("id"):
        stored = store.get(body["id"], show_password=True)
        if body["password"] == secrets.obfuscate(stored["password"]):
            fields["password"] = stored["password"]
    return probe.parameters(fields)


def presets():
    """(name, description) of the catalog's presets, for the form's select."""
    return [(name, preset["description"]) for name, preset in catalog.catalog()["presets"].items()]


def default_preset():
    """What a new source collects: the preset of the default collection rate."""
    return catalog.preset_for_collection_rate(Source.collection_rate.default)


@blueprint.get("/")
@signed_in
@described("The Sources page: the pool's sources and their status", answers={200: (HTML, STRING)})
def page():
    return render_template(
        "sources.html",
        sources=[row(source) for source in store.all()],
        presets=presets(),
        default_preset=default_preset(),
        kinds=KINDS,
        sslmodes=SSLMODES,
        admin=current_user.is_admin,
    )


@blueprint.get("/data")
@signed_in
@described(
    "The pool's sources and their status, as the Sources page lists them",
    answers={200: record(sources=array(ROW))},
)
def data():
    return jsonify(sources=[row(source) for source in store.all()])


@blueprint.get("/<uuid:source_id>")
@signed_in
@described(
    "A source as the Sources page's form edits it: its password obfuscated",
    answers={200: record(source=SOURCE_FORM)},
    errors=(404,),
)
def source(source_id):
    found = store.get(str(source_id))
    return jsonify(
        source={
            **row(found),
            "password": found["password"],
            "tags_text": format_tags(found["tags"]),
        }
    )


@blueprint.post("/")
@signed_in(admin=True)
@described(
    "Add a source from the Sources page's form",
    body=FORM,
    answers={201: SAVED},
    errors=(400, 409),
    description="A refused value names its field in `field`.",
)
def create(body):
    created = store.create(parse_form(body))
    return jsonify(source=row(created)), 201


@blueprint.post("/test")
@signed_in(admin=True)
@described(
    "Test the connection the Sources page's form describes",
    body=CONNECTION,
    answers={200: record(message=STRING)},
    errors=(400, 404),
    description=(
        "Connects within 10 s and runs `SELECT 1`; 400 with the driver's reason"
        " (never the password) otherwise. A password given as the form showed it"
        " (obfuscated) is the stored one of source `id`."
    ),
)
def test_connection(body):
    params = connection_of(body)
    probe.check(params)
    return jsonify(
        message=(
            f"Connected to {params['host']}:{params['port']}, database {params['dbname']},"
            f" as {params['user']}."
        )
    )


@blueprint.post("/<uuid:source_id>")
@signed_in(admin=True)
@described(
    "Change a source from the Sources page's form",
    body=FORM,
    answers={200: SAVED},
    errors=(400, 404, 409),
    description=(
        "The password given back as the form showed it (obfuscated) keeps the"
        " stored one. A refused value names its field in `field`."
    ),
)
def update(source_id, body):
    current = store.get(str(source_id))
    changed = store.update(current["id"], parse_form(body, current))
    return jsonify(source=row(changed))


def _enabled(source_id, enabled):
    return jsonify(source=row(store.update(str(source_id), {"enabled": enabled})))


@blueprint.post("/<uuid:source_id>/enable")
@signed_in(admin=True)
@described("Collect from a source again", answers={200: SAVED}, errors=NO_BODY_ERRORS)
def enable(source_id):
    return _enabled(source_id, True)


@blueprint.post("/<uuid:source_id>/disable")
@signed_in(admin=True)
@described("Stop collecting from a source, keeping it", answers={200: SAVED}, errors=NO_BODY_ERRORS)
def disable(source_id):
    return _enabled(source_id, False)


@blueprint.post("/<uuid:source_id>/delete")
@signed_in(admin=True)
@described(
    "Delete a source, for every API",
    answers={200: record(deleted=record(id=STRING, name=STRING))},
    errors=NO_BODY_ERRORS,
)
def delete(source_id):
    return jsonify(deleted=store.delete(str(source_id)))
