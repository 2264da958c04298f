"""The pool's sources as plain dicts: the one place the dialects create, read,
change and delete them, and where every value is checked.

Dicts use the model's own field names, `password` and `primary_password` in
clear on the way in, obfuscated on the way out unless asked otherwise, and
`replication_slots` as a list of {id, publication_name, slot_name, status}.
Errors name the field: `Invalid` for a value, `Conflict` for a taken name,
`NotFound` for an unknown source. Lookups are exact comparisons, never
patterns, so no name can match another.
"""

import datetime
import functools
import json
import logging
import re
import uuid

import peewee

from .. import state
from ..errors import Conflict, Invalid, NotFound, SecretUnreadable
from ..state import utcnow
from . import secrets
from .models import (
    ACTIVE,
    COLLECTION_RATES,
    KINDS,
    SLOT_STATUSES,
    SSLMODES,
    JSONField,
    ReplicationSlot,
    Source,
)

logger = logging.getLogger(__name__)

NAME = re.compile(r"[a-zA-Z0-9_\-.]+")  # a source, preset or metric name, whole
SLOT_NAME = re.compile(r"[a-z0-9_]{1,63}")  # what PostgreSQL accepts for a slot
NAME_MAX = 128
MAX_INTERVAL = 86400  # s: a metric collected at least once a day
PRIMARY = ("primary_port", "primary_dbname", "primary_user", "primary_password", "primary_sslmode")
PRIMARY_DEFAULTS = {
    "primary_port": 5432,
    "primary_dbname": "postgres",
    "primary_password": "",
    "primary_sslmode": "prefer",
}
# Set by Sentinel or by the collection, never by a caller.
RECORDED = ("created_at", "updated_at", "connected", "last_error", "last_collected_at")
READ_ONLY = ("id", *RECORDED)
SLOT_HEALTH = ("active", "retained_wal_bytes", "xmin_age", "checked_at")
REQUIRED = ("name", "host", "user")


# -- parsers: a value as given -> the value kept, or ValueError saying why -----------------


def _string(value):
    if not isinstance(value, str):
        raise ValueError("expected a string")
    try:
        value.encode()
    except UnicodeEncodeError:  # a lone surrogate, which JSON's \ud800 can carry
        raise ValueError("not valid Unicode text") from None
    return value


def _text(max_length=255, empty=False):
    def parse(value):
        _string(value)
        if not value and not empty:
            raise ValueError("must not be empty")
        if len(value) > max_length:
            raise ValueError(f"at most {max_length} characters")
        if any(ord(char) < 32 or char == "\x7f" for char in value):
            raise ValueError("control characters are not allowed")
        return value

    return parse


def _pg_name(value):
    """A database, role or publication name."""
    _text()(value)
    if len(value.encode()) > 63:
        raise ValueError("PostgreSQL names are at most 63 bytes")
    return value


def _source_name(value):
    if not isinstance(value, str) or not NAME.fullmatch(value):
        raise ValueError("only letters, digits, '_', '-' and '.' are allowed")
    if len(value) > NAME_MAX:
        raise ValueError(f"at most {NAME_MAX} characters")
    try:
        uuid.UUID(value)
    except ValueError:
        return value
    raise ValueError("a UUID is taken for a source's id, not its name")


def _password(value):
    _string(value)
    if "\x00" in value:
        raise ValueError("a NUL character cannot be sent to PostgreSQL")
    return value


def _integer(low, high):
    def parse(value):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError("expected an integer")
        if not low <= value <= high:
            raise ValueError(f"must be between {low} and {high}, got {value}")
        return value

    return parse


def _boolean(value):
    if not isinstance(value, bool):
        raise ValueError("expected true or false")
    return value


def _choice(choices):
    def parse(value):
        if value not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}, got {value!r}")
        return value

    return parse


def _optional(parse):
    return lambda value: None if value is None else parse(value)


def _preset(value):
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not NAME.fullmatch(value) or len(value) > NAME_MAX:
        raise ValueError("expected a preset name")
    return value


def _metrics(value):
    if not isinstance(value, dict):
        raise ValueError("expected an object of {metric: seconds}")
    for metric, seconds in value.items():
        if not isinstance(metric, str) or not NAME.fullmatch(metric) or len(metric) > NAME_MAX:
            raise ValueError(f"{metric!r} is not a metric name")
        if isinstance(seconds, bool) or not isinstance(seconds, int):
            raise ValueError(f"{metric}: expected an integer of seconds")
        if not 1 <= seconds <= MAX_INTERVAL:
            raise ValueError(f"{metric}: must be between 1 and {MAX_INTERVAL} s, got {seconds}")
    return dict(value)


def _tags(value):
    if not isinstance(value, dict):
        raise ValueError("expected an object of {name: value} strings")
    for key, text in value.items():
        _text()(key)
        try:
            _string(text)
        except ValueError as exc:
            raise ValueError(f"tag {key!r}: {exc}") from None
    return dict(value)


def _pattern(value):
    # A PostgreSQL regex, run by PostgreSQL when databases are discovered.
    return _text(1000, empty=True)(value)


def _host_config(value):
    if not isinstance(value, dict):
        raise ValueError("expected an object")
    return value


def _slot(value, updating):
    if not isinstance(value, dict):
        raise ValueError("expected an object")
    allowed = {"publication_name", "slot_name", "status"} | ({"id"} if updating else set())
    # A slot's health is the collection's to write: given back, it is ignored.
    unknown = sorted(set(value) - allowed - set(SLOT_HEALTH))
    if unknown:
        raise ValueError(f"{unknown[0]}: unknown field")
    slot = {"status": ACTIVE}
    for name, parse in SLOT_FIELDS.items():
        if name in value:
            try:
                slot[name] = parse(value[name])
            except ValueError as exc:
                raise ValueError(f"{name}: {exc}") from None
        elif name != "status":
            raise ValueError(f"{name}: required")
    if "id" in value:
        if not isinstance(value["id"], str):
            raise ValueError("id: expected a string")
        slot["id"] = value["id"]
    return slot


def _slot_name(value):
    if not isinstance(value, str) or not SLOT_NAME.fullmatch(value):
        raise ValueError("lower case letters, digits and '_', at most 63")
    return value


SLOT_FIELDS = {
    "publication_name": _pg_name,
    "slot_name": _slot_name,
    "status": _choice(SLOT_STATUSES),
}


def _slots(updating):
    def parse(value):
        if not isinstance(value, list):
            raise ValueError("expected a list")
        slots = []
        for number, item in enumerate(value, 1):
            try:
                slots.append(_slot(item, updating))
            except ValueError as exc:
                raise ValueError(f"item {number}: {exc}") from None
        names = [slot["slot_name"] for slot in slots]
        if len(set(names)) != len(names):
            raise ValueError("a slot name is given twice")
        return slots

    return parse


# What a caller may give, each with its parser; defaults are the model's.
FIELDS = {
    "name": _source_name,
    "host": _text(),
    "port": _integer(1, 65535),
    "dbname": _pg_name,
    "user": _pg_name,
    "password": _password,
    "sslmode": _choice(SSLMODES),
    "ipv6": _boolean,
    "tags": _tags,
    "group": _text(),
    "kind": _choice(KINDS),
    "include_pattern": _pattern,
    "exclude_pattern": _pattern,
    "preset": _preset,
    "metrics": _metrics,
    "standby_preset": _preset,
    "standby_metrics": _metrics,
    "only_if_primary": _boolean,
    "enabled": _boolean,
    "collection_rate": _choice(COLLECTION_RATES),
    "samples": _boolean,
    "lock_monitoring": _boolean,
    "lock_monitoring_delay": _integer(1, 3600),
    "table_monitoring": _boolean,
    "query_monitoring": _boolean,
    "query_optimize": _boolean,
    "min_calls": _integer(0, 1_000_000_000),
    "min_time": _integer(0, 86_400_000),
    "host_config": _host_config,
    "primary_host": _optional(_text()),
    "primary_port": _optional(_integer(1, 65535)),
    "primary_dbname": _optional(_pg_name),
    "primary_user": _optional(_pg_name),
    "primary_password": _optional(_password),
    "primary_sslmode": _optional(_choice(SSLMODES)),
    "replication_slots": None,  # _slots(updating), which depends on the call
}


def _parsed(fields, updating):
    """The fields given, checked one by one; Invalid names the first bad one."""
    if not isinstance(fields, dict):
        raise Invalid("expected an object of source fields")
    for name in fields:
        if name in READ_ONLY:
            raise Invalid(f"{name}: set by Sentinel, not by a caller", field=name)
        if name not in FIELDS:
            raise Invalid(f"{name}: unknown field", field=name)
    if not updating:
        for name in REQUIRED:
            if name not in fields:
                raise Invalid(f"{name}: required", field=name)
    values = {}
    for name, value in fields.items():
        parse = _slots(updating) if name == "replication_slots" else FIELDS[name]
        try:
            values[name] = parse(value)
        except ValueError as exc:
            raise Invalid(f"{name}: {exc}", field=name) from None
    return values


def _checked_together(values):
    """What no single field can tell: a preset or custom metrics, not both; a
    primary connection whole or absent (its defaults filled in)."""
    for preset, metrics in (("preset", "metrics"), ("standby_preset", "standby_metrics")):
        if values[preset] and values[metrics]:
            raise Invalid(
                f"{preset}, {metrics}: a preset or custom metric intervals, not both", field=metrics
            )
    if values["primary_host"] is None:
        for name in PRIMARY:
            if values[name] is not None:
                raise Invalid(f"{name}: given without primary_host", field=name)
        return values
    if values["primary_user"] is None:
        raise Invalid("primary_user: required with primary_host", field="primary_user")
    for name, default in PRIMARY_DEFAULTS.items():
        if values[name] is None:
            values[name] = default
    return values


# -- the store -------------------------------------------------------------------------------


def _defaults():
    values = {"password": "", "primary_password": None}
    for name in FIELDS:
        field = Source._meta.fields.get(name)
        if field is not None:
            values[name] = field.default() if callable(field.default) else field.default
    return values


def _identified(name_or_id):
    """The condition on the source with this id (anything uuid.UUID reads) or
    this exact name. A name no source can have (a NUL in it, which a
    PostgreSQL state cannot even compare) is not looked up."""
    if not isinstance(name_or_id, str):
        raise NotFound("No such source.")
    try:
        source_id = str(uuid.UUID(name_or_id))
    except ValueError:
        if not NAME.fullmatch(name_or_id):
            raise _not_found(name_or_id) from None
        return Source.name == name_or_id
    return Source.id == source_id


def _not_found(name_or_id):
    return NotFound(f"No source with the name or id {name_or_id!r}.")


def _find(name_or_id):
    """The source with this id or this exact name, as a model to change."""
    source = Source.get_or_none(_identified(name_or_id))
    if source is None:
        raise _not_found(name_or_id)
    return source


def _name_taken(name, other_than=None):
    query = Source.select(Source.id).where(Source.name == name)
    if other_than is not None:
        query = query.where(Source.id != other_than)
    return query.exists()


def _encrypted(password):
    return None if password is None else secrets.encrypt(password)


def _kept_or_new(given, token):
    """Whether the password `given` replaces the stored `token`: the obfuscated
    form of the stored one given back (a form edited and sent back whole, as
    pgwatch's UI does) keeps it."""
    if token is None:
        return True
    try:
        stored = secrets.decrypt(token)
    except SecretUnreadable:
        return True  # the stored one is lost anyway: take the one given
    return given != secrets.obfuscate(stored)


# -- reading -------------------------------------------------------------------------------
#
# Sources are read as the driver's rows made into dicts, not as peewee models:
# for 1,000 sources on SQLite the rows take 11 ms, peewee's models 85 ms and
# its dicts 50 ms. Most of the difference is converting values: strings and
# integers come from both state databases as they are kept; SQLite keeps
# booleans as 0 or 1 and dates as text, and JSON is text everywhere. The
# fields' own python_value took 15 to 17 ms for those, the converters below 4.


def _boolean(value):
    return value if value is None else bool(value)


def _timestamp(value):
    # What peewee wrote on SQLite (datetime's str()); a datetime from PostgreSQL.
    return datetime.datetime.fromisoformat(value) if isinstance(value, str) else value


JSON = json.JSONDecoder()


def _json(text):
    # Most of these columns hold an empty object: no need to parse it. The
    # others hold what json.dumps wrote, with no whitespace for json.loads to
    # skip: raw_decode reads 1,000 sources' tags in 1.2 ms, json.loads in
    # 3.2 ms, which GET /source (47.3 ms in make bench, 50 allowed) can't spare.
    if text == "{}":
        return {}
    return None if text is None else JSON.raw_decode(text)[0]


def _converter(field):
    """What makes a value of `field`, as the state database hands it back,
    the model's value; None when it already is."""
    kind = type(field)
    if kind in (peewee.CharField, peewee.TextField, peewee.IntegerField, peewee.ForeignKeyField):
        return None
    if kind is peewee.BooleanField:
        return _boolean if field.null else bool
    if kind is peewee.DateTimeField:
        return _timestamp
    if kind is JSONField:
        return _json
    return field.python_value


def _rows(model, query):
    """The rows of `query` (a SELECT * on `model`'s table) as dicts keyed by
    field name, as the model holds their values, converted a column at a
    time. SELECT * rather than peewee's list of columns: compiling that list
    took 0.8 ms of every read."""
    cursor = state.database.execute(query)
    fields = [model._meta.columns[description[0]] for description in cursor.description]
    rows = cursor.fetchall()
    if not rows:
        return []
    columns = list(zip(*rows, strict=True))
    for index, field in enumerate(fields):
        convert = _converter(field)
        if convert is not None:
            columns[index] = map(convert, columns[index])
    names = [field.name for field in fields]
    return [dict(zip(names, values, strict=True)) for values in zip(*columns, strict=True)]


def _select(model):
    return model.select(peewee.SQL("*"))


@functools.lru_cache(maxsize=20_000)
def _obfuscated(key, token):
    """The obfuscated form of the password `token` holds, kept in this
    process's memory by (key in use, token): a Fernet decrypt costs 21 µs, 21 ms
    of a list of 1,000 sources, and a token holds the same password as long as
    the key is the same. Nothing more is stored, and no password is kept in
    clear."""
    return secrets.obfuscate(secrets.decrypt(token))


def _shown(token, show_password):
    if token is None:
        return None
    if show_password:
        return secrets.decrypt(token)
    return _obfuscated(secrets.keyring.use(), token)


def _answer(row, slots, show_password):
    """A source's row (a dict of its fields) made the store's answer: its
    passwords shown or obfuscated in place of their tokens, and its slots."""
    row["password"] = _shown(row.pop("encrypted_password"), show_password)
    row["primary_password"] = _shown(row.pop("primary_encrypted_password"), show_password)
    row["replication_slots"] = slots
    return row


def _answers(rows, slots, show_password):
    """The sources of `rows` with their slots, read from the query `slots`
    (one query for them all)."""
    by_source = {}
    for slot in _rows(ReplicationSlot, slots.order_by(ReplicationSlot.slot_name)):
        by_source.setdefault(slot.pop("source"), []).append(slot)
    return [_answer(row, by_source.get(row["id"], []), show_password) for row in rows]


def _slot_dict(slot):
    return {
        "id": slot.id,
        "publication_name": slot.publication_name,
        "slot_name": slot.slot_name,
        "status": slot.status,
        **{name: getattr(slot, name) for name in SLOT_HEALTH},
    }


def as_dict(source, show_password=False, slots=None):
    """The source model `source` as get() answers it. `slots` (its slot
    models, by name) saves a query when the caller has them."""
    row = {name: getattr(source, name) for name in Source._meta.fields}
    if slots is None:
        slots = source.slots.order_by(ReplicationSlot.slot_name)
    return _answer(row, [_slot_dict(slot) for slot in slots], show_password)


def create(fields):
    """A new source from `fields` (name, host and user required, the rest
    defaulted); answers it as get() would."""
    values = {**_defaults(), **_parsed(fields, updating=False)}
    values = _checked_together(values)
    slots = values.pop("replication_slots", [])
    row = {name: value for name, value in values.items() if not name.endswith("password")}
    row["encrypted_password"] = _encrypted(values["password"])
    row["primary_encrypted_password"] = _encrypted(values["primary_password"])
    with state.database.atomic():
        if _name_taken(values["name"]):
            raise Conflict(f"name: a source named {values['name']!r} already exists.", field="name")
        try:
            source = Source.create(**row)
        except peewee.IntegrityError:
            # Another process took the name between the check and the insert.
            raise Conflict(
                f"name: a source named {values['name']!r} already exists.", field="name"
            ) from None
        for slot in slots:
            ReplicationSlot.create(source=source, **slot)
        answer = as_dict(source)
    logger.info("event=source_created source=%s id=%s", source.name, source.id)
    return answer


def get(name_or_id, show_password=False):
    """The source named `name_or_id` (or with that id)."""
    rows = _rows(Source, _select(Source).where(_identified(name_or_id)))
    if not rows:
        raise _not_found(name_or_id)
    slots = _select(ReplicationSlot).where(ReplicationSlot.source == rows[0]["id"])
    return _answers(rows, slots, show_password)[0]


def all(show_password=False):
    """Every source, by name."""
    rows = _rows(Source, _select(Source).order_by(Source.name))
    return _answers(rows, _select(ReplicationSlot), show_password)


def update(name_or_id, changes):
    """Change the fields given, keep the others (passwords included: one not
    given, or given back obfuscated, stays as stored). Setting primary_host to
    None drops the whole primary connection."""
    changes = _parsed(changes, updating=True)
    with state.database.atomic():
        source = _find(name_or_id)
        current = {name: getattr(source, name) for name in FIELDS if name in Source._meta.fields}
        # Stored passwords are tokens: whether a given one replaces them is decided below.
        current["password"] = current["primary_password"] = None
        if "primary_host" in changes and changes["primary_host"] is None:
            for name in PRIMARY:
                if changes.get(name) is not None:
                    raise Invalid(f"{name}: given without primary_host", field=name)
                current[name] = None
            source.primary_encrypted_password = None
        values = _checked_together({**current, **changes})
        if "name" in changes and _name_taken(changes["name"], other_than=source.id):
            raise Conflict(
                f"name: a source named {changes['name']!r} already exists.", field="name"
            )
        for name, value in values.items():
            if name in Source._meta.fields:
                setattr(source, name, value)
        if "password" in changes and _kept_or_new(changes["password"], source.encrypted_password):
            source.encrypted_password = secrets.encrypt(changes["password"])
        primary = source.primary_encrypted_password
        if "primary_password" in changes and changes["primary_password"] is not None:
            if _kept_or_new(changes["primary_password"], primary):
                source.primary_encrypted_password = secrets.encrypt(changes["primary_password"])
        elif values["primary_host"] is not None and primary is None:
            source.primary_encrypted_password = secrets.encrypt("")
        source.updated_at = utcnow()
        try:
            source.save()
        except peewee.IntegrityError:
            raise Conflict(
                f"name: a source named {source.name!r} already exists.", field="name"
            ) from None
        if "replication_slots" in changes:
            _replace_slots(source, changes["replication_slots"])
        # Inside the transaction: a source whose password can no longer be
        # read is not changed until it is given again.
        answer = as_dict(source)
    logger.info("event=source_updated source=%s id=%s", source.name, source.id)
    return answer


def _replace_slots(source, given):
    """The slots of `source` become those given: one with an `id` is that slot
    changed, one without is new, one left out is dropped."""
    existing = {slot.id: slot for slot in source.slots}
    for number, slot in enumerate(given, 1):
        if "id" in slot and slot["id"] not in existing:
            raise Invalid(
                f"replication_slots: item {number}: id: no such slot of this source",
                field="replication_slots",
            )
    kept = {slot["id"] for slot in given if "id" in slot}
    for slot_id in set(existing) - kept:
        existing[slot_id].delete_instance()
    for slot in given:
        fields = {name: slot[name] for name in SLOT_FIELDS}
        if "id" in slot:
            ReplicationSlot.update(**fields).where(ReplicationSlot.id == slot["id"]).execute()
        else:
            ReplicationSlot.create(source=source, **fields)


def delete(name_or_id):
    """Delete the source and its slots; answers its id and name."""
    with state.database.atomic():
        source = _find(name_or_id)
        source.delete_instance()
    logger.info("event=source_deleted source=%s id=%s", source.name, source.id)
    return {"id": source.id, "name": source.name}
