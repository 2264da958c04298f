"""The pool in pgwatch's dialect: its REST API (the union of what pgwatch v3
to v6 served) over the one source store, with pgwatch's Go field names,
its `Token` header and its plain-text errors.

A source is shown with its connection as one `ConnStr` URL, the password in
it obfuscated unless `?show_sensitive=true`; a PUT that carries the obfuscated
password back keeps the stored one, so pgwatch's edit (GET, change a field,
PUT the whole object) works unchanged.
"""

import contextlib
import functools
import ipaddress
import logging
from urllib.parse import quote

import peewee
import redis.exceptions
from flask import Blueprint, Response, jsonify

from .. import state
from ..answers import error_body
from ..auth.access import passwords_shown, token_required
from ..contract import BOOLEAN, INTEGER, STRING, describe, mapping, nullable, record
from ..errors import Conflict, Invalid
from ..extensions import redis as redis_extension
from . import catalog, logstream, probe, store
from .models import KINDS

logger = logging.getLogger(__name__)

blueprint = Blueprint("pool_pgwatch", __name__)
logstream.register(blueprint)
# pgwatch's errors are plain text, whatever failed.
error_body(
    blueprint,
    lambda status, message, error: Response(message, status=status, mimetype="text/plain"),
)


class Missing(Invalid):
    """A field or parameter pgwatch's request needs was not sent."""

    def __init__(self, parameter):
        super().__init__(f"{parameter}: required", field=parameter)


class WrongType(Invalid):
    """A field or parameter is not of the type pgwatch gives it."""

    def __init__(self, parameter):
        super().__init__(f"{parameter}: not a value this field takes", field=parameter)


described = functools.partial(
    describe, error={"text/plain": STRING}, absent=Missing, malformed=WrongType
)

# -- the mapping: pgwatch's Go names <-> the store's -------------------------------------

# Fields that are the same value under another name.
FIELDS = {
    "Name": "name",
    "Group": "group",
    "Metrics": "metrics",
    "MetricsStandby": "standby_metrics",
    "Kind": "kind",
    "IncludePattern": "include_pattern",
    "ExcludePattern": "exclude_pattern",
    "PresetMetrics": "preset",
    "PresetMetricsStandby": "standby_preset",
    "IsEnabled": "enabled",
    "CustomTags": "tags",
    "HostConfig": "host_config",
    "OnlyIfMaster": "only_if_primary",
}
OBJECTS = ("Metrics", "MetricsStandby", "CustomTags", "HostConfig")  # Go sends a nil one as null
# What ConnStr holds: libpq keywords, which are also the store's names.
CONNECTION = ("host", "port", "dbname", "user", "password", "sslmode")
# A store field at fault, in the words of a pgwatch client.
PGWATCH_NAMES = {
    **{name: pgwatch for pgwatch, name in FIELDS.items()},
    **{name: f"ConnStr {name}" for name in CONNECTION},
}

SECONDS = nullable(mapping(INTEGER))
OPTIONAL_FIELDS = {
    "Group": STRING,
    "Metrics": SECONDS,
    "MetricsStandby": SECONDS,
    "Kind": {"enum": list(KINDS)},
    "IncludePattern": STRING,
    "ExcludePattern": STRING,
    "PresetMetrics": STRING,
    "PresetMetricsStandby": STRING,
    "IsEnabled": BOOLEAN,
    "IsSuperuser": BOOLEAN,
    "CustomTags": nullable(mapping(STRING)),
    "HostConfig": nullable({"type": "object"}),
    "OnlyIfMaster": BOOLEAN,
}
NEW_SOURCE = record({"Name": STRING, "ConnStr": STRING}, optional=OPTIONAL_FIELDS)
NAMED_CHANGES = record({"Name": STRING}, optional={"ConnStr": STRING, **OPTIONAL_FIELDS})
CHANGES = record(optional={"Name": STRING, "ConnStr": STRING, **OPTIONAL_FIELDS})
SOURCE = record(
    Name=STRING,
    Group=STRING,
    ConnStr=STRING,
    Metrics=mapping(INTEGER),
    MetricsStandby=mapping(INTEGER),
    Kind=STRING,
    IncludePattern=STRING,
    ExcludePattern=STRING,
    PresetMetrics=STRING,
    PresetMetricsStandby=STRING,
    IsEnabled=BOOLEAN,
    IsSuperuser=BOOLEAN,
    CustomTags=mapping(STRING),
    HostConfig={"type": "object"},
    OnlyIfMaster=BOOLEAN,
)
EMPTY = ("text/plain", {"const": ""})
STATUS = record(status={"enum": ["ok", "busy"]})
SHOW_SENSITIVE = {"show_sensitive": BOOLEAN}


def _is_ipv6(host):
    try:
        ipaddress.IPv6Address(host)
    except ValueError:
        return False
    return True


def conn_str(source):
    """A source's connection as a postgresql:// URL, every part percent-quoted
    (a `*` of an obfuscated password kept as it is, which libpq reads alike)."""
    host = source["host"]
    if ":" in host and _is_ipv6(host):  # in brackets, its colons as they are (a zone's % quoted)
        host = f"[{quote(host, safe=':')}]"
    else:
        host = quote(host, safe="")
    userinfo = quote(source["user"], safe="")
    if source["password"]:
        userinfo += ":" + quote(source["password"], safe="*")
    dbname = quote(source["dbname"], safe="")
    return f"postgresql://{userinfo}@{host}:{source['port']}/{dbname}?sslmode={source['sslmode']}"


def connection_fields(conninfo):
    """The store's connection fields of a libpq connection string (a URL or
    key=value pairs), with libpq's defaults; Invalid for what a source cannot keep."""
    try:
        params = probe.from_conninfo(conninfo)
    except Invalid as exc:
        raise Invalid(f"ConnStr: {exc.message}", field="ConnStr") from None
    unknown = sorted(set(params) - set(CONNECTION))
    if unknown:
        raise Invalid(
            f"ConnStr: {unknown[0]} is not kept by Sentinel, which keeps {', '.join(CONNECTION)}",
            field="ConnStr",
        )
    for keyword in ("host", "user"):
        if not params.get(keyword):
            raise Invalid(f"ConnStr: a {keyword} is required", field="ConnStr")
    port = params.get("port") or "5432"
    if not port.isascii() or not port.isdigit():
        raise Invalid(f"ConnStr port: expected a number, got {port!r}", field="ConnStr")
    return {
        "host": params["host"],
        "port": int(port),
        # libpq's default: the database named after the user.
        "dbname": params.get("dbname") or params["user"],
        "user": params["user"],
        "password": params.get("password", ""),
        "sslmode": params.get("sslmode") or "prefer",
    }


def as_pgwatch(source):
    """A store dict as pgwatch shows a source, in pgwatch's order. Written out
    whole rather than walked from FIELDS: 4.5 µs a source instead of 7.3, which
    GET /source of 1,000 sources needs (make bench: 51.8 ms walked, 47.3 ms
    written out, 50 allowed)."""
    return {
        "Name": source["name"],
        "Group": source["group"],
        "ConnStr": conn_str(source),
        "Metrics": source["metrics"],
        "MetricsStandby": source["standby_metrics"],
        "Kind": source["kind"],
        "IncludePattern": source["include_pattern"],
        "ExcludePattern": source["exclude_pattern"],
        "PresetMetrics": source["preset"] or "",  # "" is none; the store keeps None
        "PresetMetricsStandby": source["standby_preset"] or "",
        "IsEnabled": source["enabled"],
        # Sentinel installs no helpers on a source, all pgwatch used this for.
        "IsSuperuser": False,
        "CustomTags": source["tags"],
        "HostConfig": source["host_config"],
        "OnlyIfMaster": source["only_if_primary"],
    }


def _in_catalog(fields):
    """Invalid unless the presets and metrics named are Sentinel's."""
    for name in ("preset", "standby_preset"):
        if fields.get(name) and fields[name] not in catalog.pgwatch_presets():
            raise Invalid(
                f"{PGWATCH_NAMES[name]}: no preset {fields[name]!r}; Sentinel has"
                f" {', '.join(catalog.pgwatch_presets())}",
                field=PGWATCH_NAMES[name],
            )
    known = set(catalog.metric_names())
    for name in ("metrics", "standby_metrics"):
        unknown = sorted(set(fields.get(name) or {}) - known)
        if unknown:
            raise Invalid(
                f"{PGWATCH_NAMES[name]}: no metric {unknown[0]!r} (GET /metric lists them)",
                field=PGWATCH_NAMES[name],
            )


def store_fields(body):
    """The store's fields of a pgwatch source body (those given only)."""
    fields = {name: body[pgwatch] for pgwatch, name in FIELDS.items() if pgwatch in body}
    for pgwatch in OBJECTS:
        if pgwatch in body and body[pgwatch] is None:
            fields[FIELDS[pgwatch]] = {}
    if "ConnStr" in body:
        fields.update(connection_fields(body["ConnStr"]))
    _in_catalog(fields)
    return fields


def _translated(message):
    """A store message whose leading field names become pgwatch's."""
    names, colon, reason = message.partition(": ")
    words = [PGWATCH_NAMES.get(name.strip()) for name in names.split(",")]
    if not colon or None in words:
        return message
    return f"{', '.join(words)}: {reason}"


@contextlib.contextmanager
def in_pgwatch_words():
    """The store's refusals, said as pgwatch says them."""
    try:
        yield
    except Conflict:
        raise Conflict("source already exists", field="Name") from None
    except Invalid as exc:
        field = PGWATCH_NAMES.get(exc.field, exc.field)
        raise Invalid(_translated(exc.message), field=field) from None


def _shown(source_name, show_sensitive):
    return as_pgwatch(store.get(source_name, show_password=passwords_shown(show_sensitive)))


def _update(source_name, body):
    with in_pgwatch_words():
        store.update(source_name, store_fields(body))
    return Response("", mimetype="text/plain")


def _delete(source_name):
    store.delete(source_name)
    return Response("", mimetype="text/plain")


# -- health ----------------------------------------------------------------------------


@blueprint.get("/liveness")
@described("Whether Sentinel answers", answers={200: record(status={"const": "ok"})})
def liveness():
    return jsonify(status="ok")


def _ready():
    """Whether the state database and Redis (where collection jobs queue) answer."""
    try:
        state.database.execute_sql("SELECT 1")
        redis_extension.connection.ping()
    except (peewee.PeeweeException, redis.exceptions.RedisError) as exc:
        logger.warning("event=not_ready error=%s", type(exc).__name__)
        return False
    return True


@blueprint.get("/readiness")
@described(
    "Whether Sentinel can serve and collect",
    answers={200: STATUS, 503: STATUS},
    description='200 `{"status": "ok"}` when Sentinel\'s state database and Redis (whose'
    ' queues the collection runs from) answer; 503 `{"status": "busy"}` otherwise.',
)
def readiness():
    if _ready():
        return jsonify(status="ok")
    return jsonify(status="busy"), 503


# -- sources ---------------------------------------------------------------------------

SOURCE_NOTES = (
    " `ConnStr` is a postgresql:// URL whose password is obfuscated unless"
    " `show_sensitive=true` (admins only). `IsSuperuser` is always false: Sentinel"
    " installs nothing on a source."
)
CHANGE_NOTES = (
    "Fields left out keep their value; `ConnStr`, when given, sets the whole"
    " connection (a password left out of it is none), and its obfuscated password"
    " given back keeps the stored one. A preset and custom `Metrics` together are"
    " 400, as are names Sentinel's catalog lacks (see GET /metric, GET /preset)."
)


@blueprint.get("/source")
@token_required(scheme="token")
@described(
    "Every source, by name",
    query=SHOW_SENSITIVE,
    answers={200: {"type": "array", "items": SOURCE}},
    errors=(403,),
    description="Sent as application/json (pgwatch sends no Content-Type)." + SOURCE_NOTES,
)
def sources(show_sensitive):
    return jsonify([as_pgwatch(source) for source in store.all(passwords_shown(show_sensitive))])


@blueprint.post("/source")
@token_required(scheme="token", admin=True)
@described(
    "Add a source",
    body=NEW_SOURCE,
    answers={201: EMPTY},
    errors=(409,),
    description="201 with an empty body; 409 `source already exists` for a taken Name."
    " Group defaults to `default`, Kind to `postgres`, IsEnabled to true."
    " A preset and custom `Metrics` together are 400.",
)
def create_source(body):
    with in_pgwatch_words():
        store.create(store_fields(body))
    return Response("", status=201, mimetype="text/plain")


@blueprint.put("/source")
@token_required(scheme="token", admin=True)
@described(
    "Change the source the body's Name names",
    body=NAMED_CHANGES,
    answers={200: EMPTY},
    errors=(404,),
    description=CHANGE_NOTES,
)
def update_named_source(body):
    return _update(body["Name"], body)


@blueprint.delete("/source")
@token_required(scheme="token", admin=True)
@described(
    "Delete the source `name` names (pgwatch v3's form)",
    query={"name": STRING},
    answers={200: EMPTY},
    errors=(404,),
)
def delete_named_source(name):
    if name is None:
        raise Missing("name")
    return _delete(name)


@blueprint.get("/source/<name>")
@token_required(scheme="token")
@described(
    "One source",
    query=SHOW_SENSITIVE,
    answers={200: SOURCE},
    errors=(403, 404),
    description=SOURCE_NOTES.strip(),
)
def source(name, show_sensitive):
    return jsonify(_shown(name, show_sensitive))


@blueprint.put("/source/<name>")
@token_required(scheme="token", admin=True)
@described(
    "Change a source",
    body=CHANGES,
    answers={200: EMPTY},
    errors=(404,),
    description="A body Name other than the URL's is 400 (a source is not renamed). "
    + CHANGE_NOTES,
)
def update_source(name, body):
    if body.get("Name", name) != name:
        raise Invalid("Name: the body's Name differs from the URL's", field="Name")
    return _update(name, body)


@blueprint.delete("/source/<name>")
@token_required(scheme="token", admin=True)
@described("Delete a source", answers={200: EMPTY}, errors=(404,))
def delete_source(name):
    return _delete(name)


# -- connection test, catalog ------------------------------------------------------------


@blueprint.post("/test-connect")
@token_required(scheme="token", admin=True)
@described(
    "Whether a connection string logs in",
    body={**STRING, "maxLength": 4096},
    body_media="text/plain",
    answers={200: EMPTY},
    description="The raw body is a libpq connection string (a URL or key=value pairs),"
    " read as a source's ConnStr is. 200 with an empty body once the server accepted"
    f" the login and answered a query, within {probe.CONNECT_TIMEOUT} s; 400 with the"
    " driver's reason otherwise, the password never in it. Admins only: it makes"
    " Sentinel open a connection to the address given.",
)
def test_connect(body):
    probe.check(probe.parameters(connection_fields(body)))
    return Response("", mimetype="text/plain")


@blueprint.get("/metric")
@token_required(scheme="token")
@described(
    "The metric catalog, by name",
    answers={
        200: mapping(
            record(
                SQLs=mapping(STRING),
                InitSQL=STRING,
                NodeStatus=STRING,
                Gauges={"type": "array", "items": STRING},
                IsInstanceLevel=BOOLEAN,
                StorageName=STRING,
                Description=STRING,
            )
        )
    },
    description="`SQLs` is keyed by the minimum PostgreSQL major version each query needs.",
)
def metrics():
    return jsonify(catalog.pgwatch_metrics())


@blueprint.get("/preset")
@token_required(scheme="token")
@described(
    "The metric presets, by name",
    answers={200: mapping(record(Description=STRING, Metrics=mapping(INTEGER)))},
    description="`Metrics` is {metric: seconds between two collections}.",
)
def presets():
    return jsonify(catalog.pgwatch_presets())
