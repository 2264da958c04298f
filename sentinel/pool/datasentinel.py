"""The pool in Datasentinel's dialect: its Connection API (`/ds-api/pool/
pg-instances/<connection_name>`) and its `user-token` login, a mapping of its
keys onto the one source model (sentinel.pool.store) and nothing more.

A connection is a source; its name in the URL is the source's name. Answers
are `{"status": ...}` with Datasentinel's own texts, failures `{"error": ...}`
(what its clients read), all through the one error path.
"""

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass

from flask import Blueprint, g, jsonify, request

from ..answers import error_body
from ..auth import accounts, sessions
from ..auth.access import client_address, passwords_shown, settings, token_required
from ..contract import BOOLEAN, INTEGER, JSON, STRING, array, describe, marks, nullable, record
from ..core import notifications
from ..errors import (
    BadJSON,
    Conflict,
    Invalid,
    Malformed,
    NotFound,
    SourceUnreachable,
    Unauthorized,
)
from . import probe, store
from .models import Source

blueprint = Blueprint("pool_datasentinel", __name__, url_prefix="/ds-api")

INSTANCES = "/pool/pg-instances"
INSTANCE = f"{INSTANCES}/<connection_name>"
BODY_NAME = "connection_name"  # how errors name the connection name of the URL


def as_is(value):
    return value


@dataclass(frozen=True)
class Key:
    """A key of Datasentinel's connection object: the source field it is,
    its JSON Schema, how a refusal of its type reads, and its value each way."""

    field: str
    schema: dict
    expected: str
    shown: Callable = as_is  # the store's value -> Datasentinel's
    taken: Callable = as_is  # Datasentinel's value -> the store's


def parse_tags(text):
    """`key=value,key2=value2` (or "") as the store's {key: value}; Invalid
    naming the part that is not `key=value`. Spaces around keys and values go."""
    tags = {}
    if not text.strip():
        return tags
    for part in text.split(","):
        key, equals, value = part.partition("=")
        key, value = key.strip(), value.strip()
        if not equals or not key:
            raise Invalid(f"tags: {part!r} is not key=value", field="tags")
        if key in tags:
            raise Invalid(f"tags: the key {key!r} is given twice", field="tags")
        tags[key] = value
    return tags


def tags_text(tags):
    return ",".join(f"{key}={value}" for key, value in sorted(tags.items()))


BOOL = "expected true or false"
INT = "expected an integer"
KEYS = {
    "host": Key("host", STRING, "expected a string"),
    "port": Key("port", INTEGER, INT),
    "user": Key("user", STRING, "expected a string"),
    "password": Key("password", STRING, "expected a string"),
    "tags": Key(
        "tags",
        STRING,
        "expected a string of key=value pairs, comma separated",
        shown=tags_text,
        taken=parse_tags,
    ),
    "enabled": Key("enabled", BOOLEAN, BOOL),
    "collection-rate": Key("collection_rate", {"enum": ["low", "high"]}, "expected low or high"),
    "samples": Key("samples", BOOLEAN, BOOL),
    "lock-monitoring": Key("lock_monitoring", BOOLEAN, BOOL),
    "lock-monitoring-delay": Key("lock_monitoring_delay", INTEGER, INT),
    "table-monitoring": Key("table_monitoring", BOOLEAN, BOOL),
    "query-monitoring": Key("query_monitoring", BOOLEAN, BOOL),
    "query-monitoring-optimize": Key("query_optimize", BOOLEAN, BOOL),
    "query-monitoring-min-calls": Key("min_calls", INTEGER, INT),
    "query-monitoring-min-time": Key("min_time", INTEGER, INT),
}
KEY_OF_FIELD = {key.field: name for name, key in KEYS.items()}
REQUIRED = ("host", "port", "user", "password")  # as the document marks them
# In a displayed object but not a source field: sent back, they are checked
# (name) or ignored (connected), so a client may send what it displayed.
DISPLAY_ONLY = {
    "name": (STRING, "expected a string"),
    "connected": (nullable(BOOLEAN), "expected true, false or null"),
}
QUERY = {"show_sensitive": (BOOLEAN, BOOL)}


def _expected(name):
    if name in KEYS:
        return KEYS[name].expected
    return (DISPLAY_ONLY.get(name) or QUERY.get(name) or (None, "malformed"))[1]


class Absent(Invalid):
    """A required key of the body was not sent."""

    def __init__(self, name):
        super().__init__(f"{name}: required", field=getattr(KEYS.get(name), "field", None))


class Refused(Invalid):
    """A parameter or body key of the wrong type, or a body that is no object."""

    def __init__(self, name):
        if name in KEYS or name in DISPLAY_ONLY:
            body = request.get_json(force=True, silent=True)
            if not isinstance(body, dict):
                super().__init__("The body must be a JSON object of the connection's keys.")
                return
        super().__init__(f"{name}: {_expected(name)}", field=getattr(KEYS.get(name), "field", None))


class BasicRefused(Unauthorized):
    """Credentials of POST /ds-api/user-token missing or wrong."""

    @property
    def headers(self):
        return {"WWW-Authenticate": 'Basic realm="Sentinel", charset="UTF-8"'}


ERROR = record(error=STRING)
ds_describe = functools.partial(describe, error={JSON: ERROR}, absent=Absent, malformed=Refused)

CONNECTION = record(
    {"name": STRING, **{name: key.schema for name, key in KEYS.items()}},
    connected=nullable(BOOLEAN),
)
BODY_PROPERTIES = {
    **{name: key.schema for name, key in KEYS.items()},
    **{name: schema for name, (schema, _) in DISPLAY_ONLY.items()},
}
NEW_CONNECTION = record({name: KEYS[name].schema for name in REQUIRED}, optional=BODY_PROPERTIES)
CHANGES = record(optional=BODY_PROPERTIES)
STATUS = record(status=STRING)
SHOW_SENSITIVE = {name: schema for name, (schema, _) in QUERY.items()}
# Every route with a name in its path: a name holding an encoded `/` routes
# elsewhere, or nowhere (404), or to a route of another method (405).
NAMED = (404, 405)


# -- mapping -----------------------------------------------------------------------------------


# KEYS is in the document's order; `connected` comes after `enabled`.
DISPLAYED = [(name, key.field, key.shown) for name, key in KEYS.items()]


def display(source):
    """A source as Datasentinel shows a connection."""
    shown = {"name": source["name"]}
    for name, field, convert in DISPLAYED:
        shown[name] = source[field] if convert is as_is else convert(source[field])
        if name == "enabled":
            shown["connected"] = source["connected"]
    return shown


def fields(body, name):
    """The store's fields of a Datasentinel body, each checked by the store's
    own parser and refused in Datasentinel's words (its key named)."""
    given = {}
    for key, value in body.items():
        if key == "connected":
            continue  # the live status, set by the collection: shown, never taken
        if key == "name":
            if value != name:
                raise Invalid(
                    f"name: the connection is named by the URL ({name!r}), not the body"
                    f" ({value!r}); rename it by deleting and adding it",
                    field="name",
                )
            continue
        if key not in KEYS:
            raise Invalid(f"{key}: unknown key")
        field = KEYS[key].field
        value = KEYS[key].taken(value)
        try:
            given[field] = store.FIELDS[field](value)
        except ValueError as exc:
            raise Invalid(f"{key}: {exc}", field=field) from None
    return given


def new_name(name):
    """The name of a connection to add, or Invalid saying why it cannot be one."""
    if name in (".", ".."):
        # Clients resolve these path segments away before sending: never reachable.
        raise Invalid(f"{BODY_NAME}: {name!r} cannot be used in a URL", field="name")
    try:
        return store.FIELDS["name"](name)
    except ValueError as exc:
        raise Invalid(f"{BODY_NAME}: {exc}", field="name") from None


def missing(name):
    return NotFound(f"Connection {name!r} does not exist.")


def known(name):
    """`name`, once it is one a connection can have, else NotFound: the store
    reads a UUID as an id, and a name no source can have finds none anyway."""
    try:
        return store.FIELDS["name"](name)
    except ValueError:
        raise missing(name) from None


def in_our_words(message, error):
    """A store error whose message starts with a field name starts with the
    Datasentinel key instead; a body that is no JSON says where it breaks."""
    field = getattr(error, "field", None)
    if field in KEY_OF_FIELD and message.startswith(f"{field}:"):
        return KEY_OF_FIELD[field] + message[len(field) :]
    if isinstance(error, BadJSON) and message == BadJSON().message:
        return json_problem()
    return message


def json_problem():
    # The shared reader only says "Invalid json format": the document's own
    # example (a trailing comma) deserves to be told where.
    raw = request.get_data(cache=True)
    if not raw.strip():
        return "The body is empty: send the connection's keys as a JSON object."
    try:
        json.loads(raw)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno}, column {exc.colno}"
        closing = exc.doc[exc.pos : exc.pos + 1]
        if closing in ("}", "]") and exc.doc[: exc.pos].rstrip().endswith(","):
            return f"The body is not valid JSON: a trailing comma before {closing!r} ({where})."
        return f"The body is not valid JSON: {exc.msg} ({where})."
    except (ValueError, RecursionError):
        pass
    return "The body is not valid JSON."


def render(status, message, error=None):
    return jsonify(error=in_our_words(message, error))


error_body(blueprint, render)


def audit(message):
    notifications.record(g.username, message)


# -- routes ----------------------------------------------------------------------------------


@blueprint.post("/user-token")
@marks(auth="basic")
@ds_describe(
    "A user-token for the Connection API, from HTTP Basic credentials",
    answers={201: record({"user-token": {"type": "string", "pattern": "^[0-9a-f]{64}$"}})},
    errors=(429,),
    description="Send it in the `user-token` header. It is an API session: it lasts while"
    " used, and ends after the session timeout of disuse (Datasentinel's last 24 h)."
    " Wrong credentials are 401; repeated failures are throttled as for /login (429).",
)
def user_token():
    credentials = request.authorization
    if credentials is None or credentials.type != "basic":
        raise BasicRefused("HTTP Basic credentials are required.")
    try:
        user = accounts.authenticate(
            credentials.username, credentials.password, client_address(), settings()
        )
    except (Malformed, NotFound):
        raise BasicRefused("Invalid username/password.") from None
    token = sessions.open_session(user, client_address(), settings()["session_timeout"])
    notifications.record(user.username, "Login")
    return jsonify({"user-token": token}), 201


@blueprint.get(INSTANCES)
@token_required(scheme="user-token")
@ds_describe(
    "Every connection, by name, as Display shows each",
    query=SHOW_SENSITIVE,
    answers={200: array(CONNECTION)},
    errors=(403,),
    description="Passwords are obfuscated unless `show_sensitive=true`, which needs the"
    " admin role (403 for a viewer).",
)
def list_connections(show_sensitive):
    sources = store.all(show_password=passwords_shown(show_sensitive))
    return jsonify([display(source) for source in sources])


@blueprint.post(INSTANCE)
@token_required(scheme="user-token", admin=True)
@ds_describe(
    "Add a connection: Sentinel connects to it first, and adds it only if that works",
    body=NEW_CONNECTION,
    answers={201: STATUS},
    errors=(409, *NAMED),
    description="`host`, `port`, `user` and `password` are required; `tags` (`key=value,...`)"
    " may be empty or left out; the collection options default as Display shows. A"
    " connection Sentinel cannot reach (10 s at most) or log in to is refused with 400 and"
    " the driver's reason, and nothing is added. A taken name is 409.",
)
def add(connection_name, body):
    name = new_name(connection_name)
    given = fields(body, name)
    try:
        store.get(name)
    except NotFound:
        pass
    else:
        raise Conflict(f"Connection {name!r} already exists.", field="name")
    defaults = {field: getattr(Source, field).default for field in ("dbname", "sslmode")}
    target = {**defaults, **given}
    try:
        probe.check(probe.parameters(target))
    except SourceUnreachable as exc:
        raise SourceUnreachable(
            f"Connection not created: cannot connect to {target['host']}:{target['port']}"
            f" as {target['user']}: {exc.message}"
        ) from None
    store.create({"name": name, **given})
    audit(f"Connection {name} created")
    return jsonify(status="Connection created and connected!"), 201


@blueprint.get(INSTANCE)
@token_required(scheme="user-token")
@ds_describe(
    "Display a connection",
    query=SHOW_SENSITIVE,
    answers={200: CONNECTION},
    errors=(403, *NAMED),
    description="The password is obfuscated unless `show_sensitive=true` (admin role)."
    " `connected` is null until the collection first tried the connection.",
)
def show(connection_name, show_sensitive):
    name = known(connection_name)
    try:
        source = store.get(name, show_password=passwords_shown(show_sensitive))
    except NotFound:
        raise missing(name) from None
    return jsonify(display(source))


def change(connection_name, changes, status, event):
    name = known(connection_name)
    try:
        store.update(name, changes)
    except NotFound:
        raise missing(name) from None
    audit(f"Connection {name} {event}")
    return jsonify(status=status)


@blueprint.put(INSTANCE)
@token_required(scheme="user-token", admin=True)
@ds_describe(
    "Update a connection: the keys given change, the others stay",
    body=CHANGES,
    answers={200: STATUS},
    errors=NAMED,
    description="Every key is optional. A displayed object may be sent back whole: its"
    " `name` must be the URL's, `connected` is ignored, and its obfuscated password keeps"
    " the stored one. The connection is not tried again.",
)
def update(connection_name, body):
    name = known(connection_name)
    return change(name, fields(body, name), "Connection updated!", "updated")


@blueprint.patch(f"{INSTANCE}/disable")
@token_required(scheme="user-token", admin=True)
@ds_describe("Disable a connection: kept, not collected", answers={200: STATUS}, errors=NAMED)
def disable(connection_name):
    return change(connection_name, {"enabled": False}, "Connection disabled!", "disabled")


@blueprint.patch(f"{INSTANCE}/enable")
@token_required(scheme="user-token", admin=True)
@ds_describe("Enable a connection: collected again", answers={200: STATUS}, errors=NAMED)
def enable(connection_name):
    return change(connection_name, {"enabled": True}, "Connection enabled!", "enabled")


@blueprint.delete(INSTANCE)
@token_required(scheme="user-token", admin=True)
@ds_describe("Delete a connection", answers={200: STATUS}, errors=NAMED)
def delete(connection_name):
    name = known(connection_name)
    try:
        store.delete(name)
    except NotFound:
        raise missing(name) from None
    audit(f"Connection {name} deleted")
    return jsonify(status="Connection deleted!")
