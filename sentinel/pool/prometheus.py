"""GET /metrics: the pool's latest samples in Prometheus' text exposition
format (0.0.4), for an existing Prometheus to scrape with an API token.

Each numeric column of a metric's rows is a family
`sentinel_pool_<metric>_<column>` (a gauge when the catalog lists the column
among the metric's gauges, else a counter, named with `_total`), labelled
with the monitored name (`source`), the database (`dbname`), the source's
tags and the row's text columns. Each source also has its status, whether it
answered, and when it was last collected. docs/pool-metrics.md tells the
rules (tag names, clashes, what is left out) a dashboard relies on.
"""

import datetime
import functools
import re

import orjson
from flask import Blueprint, current_app

from ..auth.access import token_required
from ..contract import STRING, describe
from . import catalog, history, schedule
from .models import Source

blueprint = Blueprint("pool_prometheus", __name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
PREFIX = "sentinel_pool_"
DISCOVERY = "postgres-continuous-discovery"
# The labels every sample of a metric carries before its tags and row columns.
BUILT_IN = frozenset({"source", "dbname"})
# Numeric columns that tell a metric's rows apart rather than measure
# anything (a backend, a statement, a relation): labels, not samples. Without
# them two rows would be the same series. The catalog does not say which
# columns these are, so they are named here.
IDENTIFIERS = {
    "long_transactions": frozenset({"pid"}),
    "vacuum_progress": frozenset({"pid", "relid"}),
    "stat_statements": frozenset({"queryid", "userid"}),
    "function_stats": frozenset({"funcid"}),
    "stat_ssl": frozenset({"ssl"}),
}
# Columns left out: a statement's text is long, of unbounded variety, and
# may hold a literal a user typed (a utility statement's password); an
# apply worker's pid changes at every restart and measures nothing.
LEFT_OUT = {
    "stat_statements": frozenset({"query"}),
    "subscriptions": frozenset({"pid"}),
}
NOTHING = frozenset()
STATUS_FAMILIES = (
    ("source_up", "gauge", "1 when the source answered its last collection, else 0"),
    (
        "source_last_collection_timestamp_seconds",
        "gauge",
        "When the source was last collected (Unix time); absent until it was",
    ),
    ("source_status", "gauge", "The source's status, as its `status` label (value always 1)"),
)

_INVALID_NAME_CHARACTER = re.compile(r"[^a-zA-Z0-9_]")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


# -- names and values ------------------------------------------------------------------------


def escape_label_value(text):
    """A label value between double quotes: backslash, quote and newline escaped."""
    if "\\" in text or '"' in text or "\n" in text:
        return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return text


def escape_help(text):
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _valid_label_name(name):
    # Names starting with "__" are Prometheus' own.
    return bool(_LABEL_NAME.fullmatch(name)) and not name.startswith("__")


def tag_label_name(key):
    """The label a tag key becomes: the key itself when it is a valid label
    name, else `tag_` and the key with every other character made `_`."""
    if _valid_label_name(key):
        return key
    return "tag_" + _INVALID_NAME_CHARACTER.sub("_", key)


@functools.cache
def column_label_name(column):
    """The label a row's text column becomes: `row_<column>` when it would
    be a built-in label or is no valid label name as it is."""
    if column in BUILT_IN or column == "status" or not _valid_label_name(column):
        return "row_" + _INVALID_NAME_CHARACTER.sub("_", column)
    return column


def tag_labels(tags, taken):
    """(`,name="value"` of each tag in name order, the set of those names),
    no name among `taken`.

    A tag whose label name is taken is renamed `tag_<name>` (after the tags
    that keep their own name); one still clashing, or whose name another tag
    has already, is left out."""
    used = set(taken)
    named, renamed = [], []
    for key in sorted(tags):
        name = tag_label_name(key)
        if name in used:
            renamed.append(("tag_" + name, tags[key]))
        else:
            used.add(name)
            named.append((name, tags[key]))
    for name, value in renamed:
        if name not in used:
            used.add(name)
            named.append((name, value))
    text = "".join(f',{name}="{escape_label_value(value)}"' for name, value in sorted(named))
    return text, {name for name, _ in named}


@functools.cache
def row_label_names(columns):
    """The label names a row of these columns may carry, its own and built in."""
    return BUILT_IN | {column_label_name(column) for column in columns}


@functools.cache
def family_name(metric, column):
    """(name, type) of a metric column's family."""
    gauge = column in catalog.metric(metric)["gauges"]
    name = _INVALID_NAME_CHARACTER.sub("_", f"{PREFIX}{metric}_{column}")
    return (name, "gauge") if gauge else (name + "_total", "counter")


def monitored_name(source, dbname):
    """The source's name, or `<name>_<dbname>` for a database a
    continuous-discovery source found."""
    if source["kind"] == DISCOVERY:
        return f"{source['name']}_{dbname}"
    return source["name"]


def _epoch(naive_utc):
    return naive_utc.replace(tzinfo=datetime.UTC).timestamp()


# -- the exposition --------------------------------------------------------------------------


def sources():
    """{id: source} of every source, with what its status and labels need."""
    query = Source.select(
        Source.id,
        Source.name,
        Source.kind,
        Source.tags,
        Source.enabled,
        Source.connected,
        Source.last_collected_at,
        Source.metrics,
        Source.preset,
        Source.collection_rate,
    ).order_by(Source.name)
    return {source["id"]: source for source in query.dicts()}


class Exposition:
    """The families of one scrape, each gathering its samples from every
    source, written out family by family as the format requires."""

    def __init__(self):
        # {metric: {column: [sample text after the family name and "{", ...]}}
        self.metrics = {}
        self.status = {name: [] for name, _, _ in STATUS_FAMILIES}

    def add_source(self, source, status):
        labels = f'source="{escape_label_value(source["name"])}"'
        labels += tag_labels(source["tags"], {"source", "status"})[0]
        self.status["source_up"].append(f"{labels}}} {int(bool(source['connected']))}")
        if source["last_collected_at"] is not None:
            at = _epoch(source["last_collected_at"])
            self.status["source_last_collection_timestamp_seconds"].append(f"{labels}}} {at}")
        self.status["source_status"].append(f'{labels},status="{status}"}} 1')

    def add_rows(self, source, dbname, metric, rows):
        """Samples of one metric's rows from one of the source's databases."""
        if not rows:
            return
        tags, tag_names = source["tag_labels"]
        if tag_names:
            taken = row_label_names(tuple(rows[0]))
            if not tag_names.isdisjoint(taken):
                # A tag named like a column of this metric: renamed for all its rows.
                tags = tag_labels(source["tags"], taken)[0]
        base = f'source="{escape_label_value(monitored_name(source, dbname))}"'
        base += f',dbname="{escape_label_value(dbname)}"{tags}'
        identifiers = IDENTIFIERS.get(metric, NOTHING)
        left_out = LEFT_OUT.get(metric, NOTHING)
        columns = self.metrics.setdefault(metric, {})
        for row in rows:
            labels = base
            values = []
            for column, value in row.items():
                kind = type(value)
                if column in left_out:
                    continue
                if kind is str:
                    labels += f',{column_label_name(column)}="{escape_label_value(value)}"'
                elif kind is int or kind is float:
                    if column in identifiers:
                        labels += f',{column_label_name(column)}="{value}"'
                    else:
                        values.append((column, value))
                elif kind is bool:
                    values.append((column, int(value)))
                # None (SQL NULL) and anything else is no sample.
            labels += "} "
            for column, value in values:
                samples = columns.get(column)
                if samples is None:
                    samples = columns[column] = []
                samples.append(f"{labels}{value}")

    def chunks(self):
        """The text, family by family, each let go once written: sent as it
        comes, a scrape never holds the whole text (93 MB at 654,100 samples)
        beside its lines."""
        for name, kind, help_text in STATUS_FAMILIES:
            yield from self._family(PREFIX + name, kind, help_text, self.status.pop(name))
        for metric in sorted(self.metrics):
            description = catalog.metric(metric)["description"]
            for column, samples in self.metrics.pop(metric).items():
                name, kind = family_name(metric, column)
                yield from self._family(name, kind, f"{metric}.{column}: {description}", samples)

    @staticmethod
    def _family(name, kind, help_text, samples):
        if not samples:
            return
        yield f"# HELP {name} {escape_help(help_text)}\n# TYPE {name} {kind}\n{name}{{"
        # Samples are kept without their family's name: joining them with it
        # writes every line with no Python step per sample.
        yield f"\n{name}{{".join(samples)
        yield "\n"


def exposition(now=None):
    """The text of a scrape, as chunks to send in turn: every source's status,
    and the latest samples of the sources that answered their last collection
    and are enabled. The state is read before it returns.

    A disabled or unreachable source keeps its status families only: its last
    samples are old, and Prometheus would store them again at every scrape as
    if they were new."""
    now = now or datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
    known = catalog.catalog()["metrics"]
    found = sources()
    out = Exposition()
    shown = set()
    for source_id, source in found.items():
        out.add_source(source, schedule.status(source, now))
        source["tag_labels"] = tag_labels(source["tags"], BUILT_IN)
        if source["enabled"] and source["connected"]:
            shown.add(source_id)
    for source_id, dbname, metric, _slot, _collected_at, data in history.latest():
        if source_id in shown and metric in known:
            out.add_rows(found[source_id], dbname, metric, orjson.loads(data))
    return out.chunks()


# -- the route -------------------------------------------------------------------------------


@blueprint.get("/metrics")
@token_required(scheme="bearer")
@describe(
    "The pool's latest samples, for Prometheus to scrape",
    answers={200: ("text/plain", STRING)},
    description=(
        "Prometheus' text exposition format 0.0.4 (`text/plain; version=0.0.4`):"
        " every source's `sentinel_pool_source_up`, `sentinel_pool_source_status`"
        " and `sentinel_pool_source_last_collection_timestamp_seconds`, and the"
        " latest sample of every metric of the enabled sources that answered their"
        " last collection, as `sentinel_pool_<metric>_<column>` labelled with"
        " `source`, `dbname`, the source's tags and the row's text columns."
        " Any user's API token (`sentinel tokens create`) as a bearer token."
        " See docs/pool-metrics.md."
    ),
)
def metrics():
    return current_app.response_class(exposition(), content_type=CONTENT_TYPE)
