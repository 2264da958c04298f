"""The Sources page: the pool's sources with their status, filtered by tag;
admins add and edit them (with a connection test), disable, enable and
delete them. It works through the same store as the three API dialects, so a
source added by any of them shows here. Each source has its own page: its
status, its slots' health, its discovered databases, and charts of what the
collection kept of it."""

import datetime
import functools
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from flask import Blueprint, jsonify, render_template, request
from flask_login import current_user

from .. import time_ranges
from ..answers import error_body
from ..auth.access import settings, signed_in
from ..contract import (
    ANY,
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
from . import catalog, history, probe, schedule, secrets, store
from .models import KINDS, SSLMODES, DiscoveredDatabase, Source

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
    status={"enum": list(schedule.STATUSES)},
    status_level=STRING,
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


# The colour of each status word (docs/ui.md's status classes).
STATUS_LEVELS = {
    schedule.CONNECTED: "ok",
    schedule.LATE: "warning",
    schedule.UNREACHABLE: "critical",
    schedule.NOT_CHECKED: "unknown",
    schedule.DISABLED: "unknown",
}


def row(source):
    """A store dict as the page's list shows it: no password, times in unix
    seconds, its status in one word and that word's colour."""
    shown = {name: source[name] for name in ROW["required"] if name in source}
    shown["custom_metrics"] = len(source["metrics"])
    for name in ("last_collected_at", "created_at", "updated_at"):
        shown[name] = _moment(source[name])
    shown["status"] = schedule.status(source)
    shown["status_level"] = STATUS_LEVELS[shown["status"]]
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


# -- a source's own page and its charts ---------------------------------------------

# How the page shows a chart's figures: a kind of static/charts.js (docs/ui-charts.md).
FIGURES = ("count", "number", "per_second", "bytes", "rate")
# A chart's points over any range: more samples than this are merged.
MAX_POINTS = 600
# Runs of a metric read for a chart at most: a range holding more is read on
# a coarser grid, so that opening a week of 2 s samples costs what a day of
# minutes does.
MAX_READ = 4 * MAX_POINTS
# Lines of a chart by database or by slot: the largest ones, as colours run out.
MAX_SERIES = 8


@dataclass(frozen=True)
class Chart:
    """A chart of one metric: `values(rows, database)` -> {label: value} of a
    sample's rows, `database` the one chosen (None: all of them). A counter's
    values are drawn as their increase per second."""

    id: str
    title: str
    kind: str
    metric: str
    values: Callable
    labels: tuple = ()  # shown before any value exists
    counter: bool = False
    nothing: str = "The samples kept hold nothing to draw."


def _of_database(rows, database):
    return [row for row in rows if database is None or row.get("datname") == database]


def _columns(**columns):
    """{label: a column of the metric's single row}."""

    def values(rows, database):
        return {label: rows[0].get(column) for label, column in columns.items()} if rows else {}

    return values


def _totals(**columns):
    """{label: a column summed over the databases' rows, or the chosen one's}."""

    def values(rows, database):
        rows = _of_database(rows, database)
        if not rows:
            return {}
        return {
            label: sum(row.get(column) or 0 for row in rows) for label, column in columns.items()
        }

    return values


def _each(name, column, by_database=False):
    """{a row's `name`: its `column`}, of the chosen database's row only when `by_database`."""

    def values(rows, database):
        if by_database:
            rows = _of_database(rows, database)
        return {str(row[name]): row.get(column) for row in rows if name in row}

    return values


CHARTS = (
    Chart(
        "backends",
        "Backends",
        "count",
        "kpi",
        _columns(backends="backends", active="active_backends", waiting="waiting_backends"),
        labels=("backends", "active", "waiting"),
    ),
    Chart(
        "oldest_xact",
        "Oldest transaction (seconds)",
        "number",
        "kpi",
        _columns(**{"oldest transaction": "oldest_xact_seconds"}),
        labels=("oldest transaction",),
    ),
    Chart(
        "transactions",
        "Transactions",
        "per_second",
        "db_stats",
        _totals(commits="xact_commit", rollbacks="xact_rollback"),
        labels=("commits", "rollbacks"),
        counter=True,
    ),
    Chart(
        "db_size",
        "Database size",
        "bytes",
        "db_size",
        _each("datname", "size_bytes", by_database=True),
        nothing="The samples kept hold no size of this database.",
    ),
    Chart(
        "wal", "WAL written", "rate", "wal", _columns(written="wal_lsn_bytes"), ("written",), True
    ),
    Chart(
        "slots",
        "WAL retained by replication slots",
        "bytes",
        "replication_slots",
        _each("slot_name", "retained_wal_bytes"),
        nothing="No replication slot on this server.",
    ),
)
CHART_IDS = {chart.id: chart for chart in CHARTS}


def _points(chart, samples, database):
    """[(slot, time, values)] of a chart from samples [(slot, collected_at,
    rows)], oldest first. A gauge's values are {label: value}; a counter's
    {label: (increase, seconds)} since the previous sample, None where it
    went back (a statistics reset, a database dropped), and its first sample
    gives no point."""
    points, previous = [], None
    for slot, at, rows in samples:
        values = chart.values(rows, database)
        if not chart.counter:
            points.append((slot, at, values))
            continue
        if previous is not None:
            before_at, before = previous
            increases = {}
            for label, value in values.items():
                old = before.get(label)
                if value is None or old is None or value < old or at <= before_at:
                    increases[label] = None
                else:
                    increases[label] = (value - old, at - before_at)
            points.append((slot, at, increases))
        previous = (at, values)
    return points


def _merged(chart, points):
    """At most MAX_POINTS points: consecutive ones merged, each merge keeping
    the time of its newest, a gauge's highest value (the peak a DBA looks
    for) and a counter's increase over the time of those merged."""
    size = math.ceil(len(points) / MAX_POINTS)
    if size <= 1:
        return points
    merged = []
    for start in range(0, len(points), size):
        group = points[start : start + size]
        labels = dict.fromkeys(label for _, _, values in group for label in values)
        values = {}
        for label in labels:
            known = [v[label] for _, _, v in group if v.get(label) is not None]
            if not known:
                values[label] = None
            elif chart.counter:
                values[label] = (sum(d for d, _ in known), sum(s for _, s in known))
            else:
                values[label] = max(known)
        merged.append((group[-1][0], group[-1][1], values))
    return merged


def _value(chart, value):
    if value is None:
        return None
    if chart.counter:
        increase, seconds = value
        value = increase / seconds if seconds > 0 else None
    return round(value, 3) if isinstance(value, float) else value


def _series(chart, points):
    """(labels, data) for the page: data is [[times...], [values of
    labels[0]...], ...]; lines by name keep the MAX_SERIES largest."""
    labels = list(chart.labels)
    for _, _, values in points:
        labels += [label for label in values if label not in labels]
    if not chart.labels and len(labels) > MAX_SERIES:
        newest = {}
        for _, _, values in points:
            newest.update((k, v) for k, v in values.items() if v is not None)
        labels = sorted(labels, key=lambda label: -(_value(chart, newest.get(label)) or 0))
        labels = sorted(labels[:MAX_SERIES])
    times = [round(at, 3) for _, at, _ in points]
    columns = [[_value(chart, values.get(label)) for _, _, values in points] for label in labels]
    return labels, [times, *columns]


def _why_empty(chart, source, interval):
    """Why a chart has nothing to draw when the source says it, else None."""
    if not source["enabled"]:
        return "The source is disabled: nothing is collected from it until it is enabled again."
    if interval is None:
        return f"Not collected: {chart.metric} is not among the metrics this source collects."
    if source["connected"] is False:
        return "The source did not answer at the last run: its last error is above."
    return None


def _first_due(source, interval, samples):
    """When a chart's first point is expected (epoch seconds): the run after
    its last sample (a rate needs two), else the first run due after the
    source was last changed."""
    if samples:
        return samples[-1][0] + interval
    changed = _moment(source["updated_at"]) or time.time()
    return (int(changed) // interval + 1) * interval


def sample_dbname(source, metric, database, found):
    """The database whose samples of `metric` a chart reads: the chosen one,
    else the source's own (where instance-level metrics are collected), else
    any that has them. `found` is history.metrics_of(source)."""
    for dbname in (database, source["dbname"]):
        if dbname is not None and metric in found.get(dbname, ()):
            return dbname
    return next((name for name, metrics in found.items() if metric in metrics), source["dbname"])


def chart_answer(chart, source, samples, database, interval, whole):
    """One chart of the page's data. `whole`: the samples are the whole
    range (the chart's empty state is only known then)."""
    points = _merged(chart, _points(chart, samples, database))
    labels, data = _series(chart, points)
    drawn = any(value is not None for column in data[1:] for value in column)
    note = due = None
    if not drawn and whole:
        note = _why_empty(chart, source, interval)
        some = [sample for sample in samples if chart.values(sample[2], database)]
        if note is None and some and chart.counter:
            due = _first_due(source, interval, some)
        elif note is None and samples:
            note = chart.nothing
        elif note is None:
            due = _first_due(source, interval, [])
    return {
        "id": chart.id,
        "title": chart.title,
        "kind": chart.kind,
        "metric": chart.metric,
        "labels": labels,
        "data": data,
        "last": samples[-1][0] if samples else None,
        "interval": interval,
        "note": note,
        "due": due,
    }


def charts_of(source, range_seconds, database=None, after=None, empty=()):
    """The page's charts of a source over the last `range_seconds`: with
    `after` (a slot), only the samples since it, except for the charts
    named in `empty` (those the page has nothing drawn of), read whole."""
    now = time.time()
    since = int(now - range_seconds)
    found = history.metrics_of(source["id"])
    intervals = schedule.intervals(source)
    answers, read = [], {}  # charts of the same metric read it once
    for chart in CHARTS:
        dbname = sample_dbname(source, chart.metric, database, found)
        whole = after is None or chart.id in empty
        start = since if whole else max(since, after)
        key = (dbname, chart.metric, start)
        interval = intervals.get(chart.metric)
        if key not in read:
            read[key] = history.series(
                source["id"], dbname, chart.metric, start, int(now) + 1, interval, MAX_READ
            )
        samples = read[key]
        answers.append(chart_answer(chart, source, samples, database, interval, whole))
    return {"now": now, "since": since, "charts": answers}


def discovered(source):
    """[(dbname, found_at)] of a continuous-discovery source's databases."""
    query = (
        DiscoveredDatabase.select(DiscoveredDatabase.dbname, DiscoveredDatabase.found_at)
        .where(DiscoveredDatabase.source == source["id"])
        .order_by(DiscoveredDatabase.dbname)
    )
    return list(query.tuples())


def slot_row(slot):
    """A replication slot with its health as the page shows it (unix seconds)."""
    return {
        "slot_name": slot["slot_name"],
        "publication_name": slot["publication_name"],
        "status": slot["status"],
        "active": slot.get("active"),
        "retained_wal_bytes": slot.get("retained_wal_bytes"),
        "xmin_age": slot.get("xmin_age"),
        "checked_at": _moment(slot.get("checked_at")),
    }


def kept_seconds():
    """How long the collection keeps samples (the ranges offered end there)."""
    return settings().get("pool_retention", 7 * 86400)


def chosen_database(source, requested):
    """The database the charts show: one of a continuous-discovery source's
    own, or None (the instance, all databases)."""
    if requested and requested in {name for name, _ in discovered(source)}:
        return requested
    return None


def wants_json():
    """A call of the page's scripts (Accept: application/json) rather than a
    browser opening a page."""
    return request.accept_mimetypes.best_match([HTML, JSON]) == JSON


@blueprint.get("/<uuid:source_id>")
@signed_in
@described(
    "A source's page (HTML); for the Sources page's form (Accept: application/json),"
    " the source as it edits it, its password obfuscated",
    query={"range": time_ranges.RANGE, "database": STRING},
    answers={200: [(HTML, STRING), (JSON, record(source=SOURCE_FORM))]},
    errors=(404,),
    description=(
        "The page shows the source's status, slots, discovered databases and charts of"
        " the last `range` seconds (all that is kept without it), for the discovered"
        " database `database` (the whole instance without it)."
    ),
)
def source(source_id, range, database):
    found = store.get(str(source_id))
    if wants_json():
        return jsonify(
            source={
                **row(found),
                "password": found["password"],
                "tags_text": format_tags(found["tags"]),
            }
        )
    intervals = schedule.intervals(found)
    return render_template(
        "source.html",
        source=row(found),
        intervals=intervals,
        every=min(intervals.values(), default=None),
        slots=[slot_row(slot) for slot in found["replication_slots"]],
        databases=discovered(found),
        database=chosen_database(found, database),
        charts=CHARTS,
        ranges=time_ranges.offered(kept_seconds()),
        range=time_ranges.chosen(range, kept_seconds()),
        admin=current_user.is_admin,
    )


SLOT = record(
    slot_name=STRING,
    publication_name=STRING,
    status=STRING,
    active=nullable(BOOLEAN),
    retained_wal_bytes=nullable(INTEGER),
    xmin_age=nullable(INTEGER),
    checked_at=MOMENT,
)
CHART = record(
    id=STRING,
    title=STRING,
    kind={"enum": list(FIGURES)},
    metric=STRING,
    labels=array(STRING),
    data=array(array(ANY)),
    last=nullable(INTEGER),
    interval=nullable(INTEGER),
    note=nullable(STRING),
    due=nullable(INTEGER),
)
SLOT_AFTER = {"type": "integer", "minimum": 0, "maximum": 10**12}
CHART_LIST = {"type": "string", "pattern": "^[a-z_]*(,[a-z_]+)*$"}


@blueprint.get("/<uuid:source_id>/data")
@signed_in
@described(
    "A source's status, slots and charts of the last `range` seconds, as its page shows them",
    query={
        "range": time_ranges.RANGE,
        "database": STRING,
        "after": SLOT_AFTER,
        "empty": CHART_LIST,
    },
    answers={
        200: record(
            source=ROW,
            slots=array(SLOT),
            now=NUMBER,
            since=INTEGER,
            charts=array(CHART),
        )
    },
    errors=(404,),
    description=(
        "Charts of the discovered database `database` (the whole instance without it)."
        " With `after` (a run's slot, epoch seconds), only the samples since it, except"
        " for the charts named in `empty` (comma-separated ids), read over the whole"
        " range. Values are in base units; counters come as rates per second; at most"
        f" {MAX_POINTS} points a chart, consecutive samples merged beyond that."
    ),
)
def source_data(source_id, range, database, after, empty):
    found = store.get(str(source_id))
    charts = charts_of(
        found,
        time_ranges.chosen(range, kept_seconds()),
        chosen_database(found, database),
        after,
        set((empty or "").split(",")),
    )
    return jsonify(
        source=row(found),
        slots=[slot_row(slot) for slot in found["replication_slots"]],
        **charts,
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
