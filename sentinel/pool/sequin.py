"""The pool in Sequin's dialect: its `postgres_databases` API, a mapping of
Sequin's database objects onto the pool's sources (sentinel.pool.store).

A database is created with exactly one replication slot, and only once the
checks of sentinel.pool.verify pass. Errors answer in Sequin's shape: 422
`{"summary", "validation_errors", "code"}` for a refused value, 404
`{"summary": "Not found: ..."}`, `{"summary"}` for the rest.
"""

import contextlib
import functools
import uuid
from urllib.parse import unquote, urlsplit

from flask import Blueprint, jsonify, request

from ..answers import error_body
from ..auth.access import passwords_shown, token_required
from ..contract import (
    BOOLEAN,
    INTEGER,
    JSON,
    STRING,
    Validator,
    array,
    describe,
    mapping,
    nullable,
    record,
)
from ..errors import Conflict, Invalid, NotFound, SentinelError, SourceUnreachable
from . import probe, store, verify
from .models import ACTIVE, SLOT_STATUSES

blueprint = Blueprint("pool_sequin", __name__, url_prefix="/api")

# Sequin's internal pool settings: shown as Sequin shows them, used by nothing here.
POOL_SIZE = 10
QUEUE_INTERVAL = 1000
QUEUE_TARGET = 50
DEFAULT_PORT = 5432
SSL_REQUIRED = ("require", "verify-ca", "verify-full")  # the sslmodes Sequin's `ssl: true` is
URL_SCHEMES = ("postgresql", "postgres")

# Sequin's name of each store field an error may name.
NAMES = {
    "host": "hostname",
    "dbname": "database",
    "user": "username",
    "sslmode": "ssl",
    "tags": "annotations",
}
# Sequin's connection fields and the store's, for a database and its primary.
CONNECTION = {
    "hostname": "host",
    "port": "port",
    "database": "dbname",
    "username": "user",
    "password": "password",
}
REQUIRED = ("hostname", "database", "username", "password")
URL_CONFLICT = (
    "Bad connection details. If `url` is specified, no other connection params are allowed"
)
URL_EXAMPLE = "postgresql://user:password@db.example.com:5432/postgres"
TAKEN = "Database name must be unique"


# -- errors --------------------------------------------------------------------------------


class Unprocessable(SentinelError):
    """A request Sequin answers 422: the field at fault (in Sequin's names)
    and its messages, or a summary alone."""

    status = 422

    def __init__(self, summary, field=None, messages=None, code="invalid"):
        super().__init__(summary, field=field)
        self.messages = messages or ([summary] if field else [])
        self.code = code

    def validation_errors(self):
        return {self.field: self.messages} if self.field else {}


class Blank(Unprocessable):
    """A required field that was not given, in Ecto's words."""

    def __init__(self, parameter, within=None):
        where = within or parameter
        text = f"{parameter} can't be blank" if within else "can't be blank"
        super().__init__(f"Validation failed: {parameter} can't be blank", where, [text], "blank")


class Malformed(Unprocessable):
    """A field whose value is not of the type or form described."""

    def __init__(self, parameter):
        super().__init__(f"Validation failed: {parameter} is invalid", parameter, ["is invalid"])


def name_taken():
    return Unprocessable(f"Validation failed: name: {TAKEN}", "name", [TAKEN], code="unique")


def render(status, message, error=None):
    if isinstance(error, Unprocessable):
        return jsonify(
            summary=message, validation_errors=error.validation_errors(), code=error.code
        )
    if status == 404 and not message.startswith("Not found"):
        message = f"Not found: {message}"
    return jsonify(summary=message)


error_body(blueprint, render)


def _sequin_field(field):
    """(Sequin's field, the sub-field of `primary` or None) of a store field."""
    if field.startswith("primary_"):
        inner = field.removeprefix("primary_")
        return "primary", NAMES.get(inner, inner)
    return NAMES.get(field, field), None


@contextlib.contextmanager
def in_sequin_terms():
    """The store's and the checks' refusals as Sequin answers them: 422, the
    field in Sequin's name; a taken name is a 422 too, not a 409."""
    try:
        yield
    except Conflict:
        raise name_taken() from None
    except Invalid as exc:
        if exc.field is None:
            raise Unprocessable(exc.message, code="check_failed") from None
        field, inner = _sequin_field(exc.field)
        text = exc.message.removeprefix(f"{exc.field}: ")
        text = f"{inner}: {text}" if inner else text
        raise Unprocessable(f"Validation failed: {field}: {text}", field, [text]) from None
    except SourceUnreachable as exc:
        raise Unprocessable(exc.message, code="unreachable") from None


def json_only(view):
    """Refuse a body that is not said to be JSON, as Sequin does (400)."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        if request.mimetype != JSON:
            raise Invalid("Content-Type: application/json is required")
        return view(*args, **kwargs)

    return wrapper


describe_sequin = functools.partial(
    describe,
    error={
        JSON: record(
            summary=nullable(STRING),
            optional={
                "validation_errors": mapping(array(STRING)),
                "code": STRING,
            },
        )
    },
    absent=Blank,
    malformed=Malformed,
)

# -- schemas -------------------------------------------------------------------------------

# Text libpq can be handed: no NUL (psycopg2 refuses it) nor other control characters.
TEXT = {"type": "string", "maxLength": 255, "pattern": "^[^\\x00-\\x1f\\x7f]*$"}
PG_NAME = {**TEXT, "maxLength": 63}
PASSWORD = {"type": "string", "maxLength": 1000, "pattern": "^[^\\x00]*$"}
PORT = {"type": "integer", "minimum": 1, "maximum": 65535}
SOURCE_NAME = {"type": "string", "maxLength": store.NAME_MAX, "pattern": "^[a-zA-Z0-9_\\-.]+$"}
SLOT_IN = {
    "type": "object",
    "properties": {
        "id": STRING,
        "publication_name": PG_NAME,
        "slot_name": {"type": "string", "pattern": "^[a-z0-9_]{1,63}$"},
        "status": {"enum": list(SLOT_STATUSES)},
    },
}
PRIMARY_IN = {
    "type": "object",
    "properties": {
        "hostname": TEXT,
        "port": PORT,
        "database": PG_NAME,
        "username": PG_NAME,
        "password": PASSWORD,
        "ssl": BOOLEAN,
    },
}
DATABASE_IN = {
    "name": SOURCE_NAME,
    "url": {"type": "string", "maxLength": 2000},
    "hostname": TEXT,
    "port": PORT,
    "database": PG_NAME,
    "username": PG_NAME,
    "password": PASSWORD,
    "ssl": BOOLEAN,
    "ipv6": BOOLEAN,
    "use_local_tunnel": BOOLEAN,
    "annotations": {**mapping(STRING), "maxProperties": 100},
    "replication_slots": {"type": "array", "maxItems": 100, "items": SLOT_IN},
}
CREATE = {
    "type": "object",
    "required": ["name"],
    "properties": {**DATABASE_IN, "primary": PRIMARY_IN},
}
UPDATE = {"type": "object", "properties": {**DATABASE_IN, "primary": nullable(PRIMARY_IN)}}
# The parts of a `url`, checked as the same parts given one by one.
URL_PARTS = Validator(
    {"type": "object", "properties": {name: DATABASE_IN[name] for name in CONNECTION}}
)

SLOT = record(
    id=STRING, publication_name=STRING, slot_name=STRING, status={"enum": list(SLOT_STATUSES)}
)
PRIMARY = record(hostname=STRING, port=INTEGER, database=STRING, username=STRING, ssl=BOOLEAN)
DATABASE = {
    **record(
        id=STRING,
        name=STRING,
        hostname=STRING,
        port=INTEGER,
        database=STRING,
        username=STRING,
        password=STRING,
        ssl=BOOLEAN,
        ipv6=BOOLEAN,
        use_local_tunnel=BOOLEAN,
        pool_size=INTEGER,
        queue_interval=INTEGER,
        queue_target=INTEGER,
        replication_slots=array(SLOT),
        optional={"primary": PRIMARY},
    ),
    "additionalProperties": False,
}
SHOW_SENSITIVE = {
    "show_sensitive": {
        **STRING,
        "description": "`true` (exactly) shows the password in clear",
    }
}

# -- the mapping ---------------------------------------------------------------------------


def shown(source):
    """A store dict as Sequin's database object."""
    database = {
        "id": source["id"],
        "name": source["name"],
        "hostname": source["host"],
        "port": source["port"],
        "database": source["dbname"],
        "username": source["user"],
        "password": source["password"],
        "ssl": source["sslmode"] in SSL_REQUIRED,
        "ipv6": source["ipv6"],
        "use_local_tunnel": False,
        "pool_size": POOL_SIZE,
        "queue_interval": QUEUE_INTERVAL,
        "queue_target": QUEUE_TARGET,
        # Sequin's slot object: the health the collection keeps is the pages' and /metrics'.
        "replication_slots": [
            {key: slot[key] for key in ("id", "publication_name", "slot_name", "status")}
            for slot in source["replication_slots"]
        ],
    }
    if source["primary_host"] is not None:
        database["primary"] = {
            "hostname": source["primary_host"],
            "port": source["primary_port"],
            "database": source["primary_dbname"],
            "username": source["primary_user"],
            "ssl": source["primary_sslmode"] in SSL_REQUIRED,
        }
    return database


def sslmode(ssl, current=None):
    """The store's sslmode for Sequin's `ssl`: `require` or `disable`, or
    the current mode when it already means what `ssl` says (an edited object
    sent back whole keeps a `verify-full`, or a `prefer`)."""
    if current is not None and (current in SSL_REQUIRED) == ssl:
        return current
    return "require" if ssl else "disable"


def parse_url(url):
    """{hostname, port, database, username, password} of a connection URL, or
    the 422 naming what is wrong with it."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise Unprocessable(
            f"`url` is not a connection URL. It should look like: {URL_EXAMPLE}", "url"
        ) from None
    if parts.scheme not in URL_SCHEMES or not parts.netloc:
        raise Unprocessable(
            f"`url` is not a connection URL. It should look like: {URL_EXAMPLE}", "url"
        )
    if parts.query or parts.fragment:
        raise Unprocessable(
            "Query parameters are not allowed in `url`: give ssl with the `ssl` field", "url"
        )
    found = {
        "hostname": parts.hostname,
        "port": DEFAULT_PORT if port is None else port,
        # libpq decodes %XX in each part (and leaves a + as it is): so do we.
        "database": unquote(parts.path.removeprefix("/")) or None,
        "username": unquote(parts.username) if parts.username else None,
        "password": unquote(parts.password) if parts.password else None,
    }
    missing = [name for name in REQUIRED if not found[name]]
    if missing:
        raise Unprocessable(
            f"Parameters missing from `url`: {', '.join(missing)}."
            f" It should look like: {URL_EXAMPLE}",
            "url",
        )
    if not URL_PARTS.is_valid(found):
        raise Unprocessable(
            "`url` holds a value PostgreSQL cannot take (a port out of range, a control character)",
            "url",
        )
    return found


def connection(body):
    """Sequin's connection fields of a body: those given, or those of its `url`."""
    if "url" not in body:
        return {name: body[name] for name in CONNECTION if name in body}
    if any(body.get(name) is not None for name in CONNECTION):
        raise Unprocessable(URL_CONFLICT, code="invalid")
    return parse_url(body["url"])


def _blank(value):
    return value is None or value == ""


def _store_connection(given, prefix=""):
    return {f"{prefix}{CONNECTION[name]}": value for name, value in given.items()}


def primary_fields(primary, current=None):
    """The store's primary_* fields of Sequin's `primary` object (None drops
    the primary). Without a primary yet, it needs the same fields as a database."""
    if primary is None:
        return {"primary_host": None}
    given = {name: primary[name] for name in CONNECTION if name in primary}
    for name in REQUIRED:
        if (name in given and _blank(given[name])) or (current is None and name not in given):
            raise Blank(name, within="primary")
    fields = _store_connection(given, "primary_")
    if current is None:
        fields.setdefault("primary_port", DEFAULT_PORT)
        fields["primary_sslmode"] = sslmode(primary.get("ssl", True))
    elif "ssl" in primary:
        fields["primary_sslmode"] = sslmode(primary["ssl"], current)
    return fields


def common_fields(body, current=None):
    """What creating and updating read alike: the flags and annotations."""
    if body.get("use_local_tunnel"):
        raise Unprocessable(
            "Validation failed: use_local_tunnel: Sentinel connects directly; local tunnels"
            " are not supported",
            "use_local_tunnel",
            ["local tunnels are not supported"],
        )
    fields = {}
    if "ipv6" in body:
        fields["ipv6"] = body["ipv6"]
    if "annotations" in body:
        fields["tags"] = body["annotations"]
    if "ssl" in body or current is None:
        fields["sslmode"] = sslmode(body.get("ssl", True), current and current["sslmode"])
    return fields


def created_fields(body):
    """The store's fields of a create body, or the 422 naming what is missing."""
    given = connection(body)
    given.setdefault("port", DEFAULT_PORT)
    for name in REQUIRED:
        if _blank(given.get(name)):
            raise Blank(name)
    fields = {"name": body["name"], **_store_connection(given), **common_fields(body)}
    if body.get("primary") is not None:
        fields.update(primary_fields(body["primary"]))
    slots = body.get("replication_slots")
    if not isinstance(slots, list) or len(slots) != 1:
        raise Unprocessable(
            "A `replication_slots` field with exactly one slot is required",
            "replication_slots",
            ["exactly one slot is required"],
        )
    slot = slots[0]
    for name in ("publication_name", "slot_name"):
        if _blank(slot.get(name)):
            raise Blank(name, within="replication_slots")
    fields["replication_slots"] = [
        {
            "publication_name": slot["publication_name"],
            "slot_name": slot["slot_name"],
            "status": slot.get("status", ACTIVE),
        }
    ]
    return fields


def updated_slots(slots, current):
    """The source's slots after an update naming one by its id, or None
    when none is given (no change)."""
    if not slots:
        return None
    if len(slots) > 1:
        raise Unprocessable(
            "For updates, omit `replication_slots` or give a list of exactly one slot",
            "replication_slots",
            ["at most one slot"],
        )
    slot = slots[0]
    if "id" not in slot:
        raise Unprocessable(
            "The slot in `replication_slots` needs its `id` for an update; leave"
            " `replication_slots` out to keep the slot as it is",
            "replication_slots",
            ["id can't be blank"],
            code="blank",
        )
    existing = {kept["id"]: kept for kept in current["replication_slots"]}
    if slot["id"] not in existing:
        raise Unprocessable(
            f"Validation failed: replication_slots: no slot {slot['id']!r} on this database",
            "replication_slots",
            [f"no slot {slot['id']!r} on this database"],
        )
    return [{**existing[slot["id"]], **slot}]


def updated_fields(body, current):
    """The store's changes of an update body: only what it gives (a port
    left out stays as it is)."""
    given = connection(body)
    for name, value in given.items():
        if name in REQUIRED and _blank(value):
            raise Blank(name)
    fields = {**_store_connection(given), **common_fields(body, current)}
    if "name" in body:
        fields["name"] = body["name"]
    if "primary" in body:
        known = current["primary_sslmode"] if current["primary_host"] is not None else None
        fields.update(primary_fields(body["primary"], known))
    slots = updated_slots(body.get("replication_slots"), current)
    if slots is not None:
        fields["replication_slots"] = slots
    return fields


def find(id_or_name, show_password=False):
    """The source a URL names (a UUID is an id, anything else a name)."""
    try:
        return store.get(id_or_name, show_password=show_password)
    except NotFound:
        raise NotFound(f"Not found: no database with the id or name {id_or_name!r}") from None


def refuse_taken(name):
    """Refuse a taken name before the checks connect anywhere (the store
    refuses it again, atomically, when it creates the source)."""
    try:
        uuid.UUID(name)
    except ValueError:
        pass
    else:
        return  # not a name at all: the store says why
    try:
        store.get(name)
    except NotFound:
        return
    raise name_taken()


# -- routes --------------------------------------------------------------------------------


@blueprint.get("/postgres_databases")
@token_required(scheme="bearer")
@describe_sequin(
    "Every database (source), by name",
    query=SHOW_SENSITIVE,
    answers={200: record(data=array(DATABASE))},
    errors=(403,),
    description="Passwords are obfuscated unless `show_sensitive=true` (admin role).",
)
def databases(show_sensitive):
    visible = passwords_shown(show_sensitive == "true")
    return jsonify(data=[shown(source) for source in store.all(show_password=visible)])


@blueprint.post("/postgres_databases")
@token_required(scheme="bearer", admin=True)
@json_only
@describe_sequin(
    "Register a database with its replication slot, once it passes the checks",
    body=CREATE,
    answers={201: DATABASE},
    errors=(404, 422),
    description="Give either `url` or `hostname`, `port` (5432 by default), `database`,"
    " `username` and `password`; `ssl` defaults to true (sslmode `require`)."
    " `replication_slots` holds exactly one slot. Before anything is stored Sentinel"
    " checks, in order: the server is reachable, the login works, the role may CONNECT"
    " to the database, the publication exists there (404), the slot exists (404), is"
    " logical and belongs to that database, max_replication_slots > 0 and"
    " wal_level = logical; any other failure is 422 saying which. The answer never"
    " shows the password.",
)
def create(body):
    fields = created_fields(body)
    refuse_taken(fields["name"])
    slot = fields["replication_slots"][0]
    with in_sequin_terms():
        verify.verify(probe.parameters(fields), slot["publication_name"], slot["slot_name"])
        source = store.create(fields)
    return jsonify(shown(source)), 201


@blueprint.get("/postgres_databases/<id_or_name>")
@token_required(scheme="bearer")
@describe_sequin(
    "A database by id (a UUID) or name",
    query=SHOW_SENSITIVE,
    answers={200: DATABASE},
    errors=(403, 404),
    description="The password is obfuscated unless `show_sensitive=true` (admin role).",
)
def database(id_or_name, show_sensitive):
    visible = passwords_shown(show_sensitive == "true")
    return jsonify(shown(find(id_or_name, show_password=visible)))


@blueprint.route("/postgres_databases/<id_or_name>", methods=["PUT", "PATCH"])
@token_required(scheme="bearer", admin=True)
@json_only
@describe_sequin(
    "Change the fields given of a database; the others stay as they are",
    body=UPDATE,
    answers={200: DATABASE},
    errors=(404, 422),
    description="PUT and PATCH both change only what the body gives: a `port` left out"
    " is kept. Nothing is checked against the server. A slot given carries its `id`;"
    " `primary: null` drops the primary. The answer never shows the password.",
)
def update(id_or_name, body):
    current = find(id_or_name)
    with in_sequin_terms():
        source = store.update(current["id"], updated_fields(body, current))
    return jsonify(shown(source))


@blueprint.delete("/postgres_databases/<id_or_name>")
@token_required(scheme="bearer", admin=True)
@describe_sequin(
    "Delete a database and its slot (nothing is dropped on the server)",
    answers={200: record(success=BOOLEAN, id=STRING)},
    errors=(404,),
)
def delete(id_or_name):
    deleted = store.delete(find(id_or_name)["id"])
    return jsonify(success=True, id=deleted["id"])


@blueprint.post("/postgres_databases/<id_or_name>/test_connection")
@token_required(scheme="bearer")
@describe_sequin(
    "Run the create checks again against a registered database",
    answers={
        200: record(success={"const": True}),
        422: record(success={"const": False}, reason=STRING),
    },
    errors=(404,),
    description="Reachable, login, CONNECT privilege and, for its slot, the publication,"
    " the slot and the server's settings. Changes nothing: a viewer may run it.",
)
def test_connection(id_or_name):
    source = find(id_or_name, show_password=True)
    slots = source["replication_slots"]
    slot = slots[0] if slots else {"publication_name": None, "slot_name": None}
    try:
        verify.verify(probe.parameters(source), slot["publication_name"], slot["slot_name"])
    except (Invalid, NotFound, SourceUnreachable) as exc:
        return jsonify(success=False, reason=exc.message), 422
    return jsonify(success=True)
