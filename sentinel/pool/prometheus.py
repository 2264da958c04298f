"""GET /metrics: the pool's latest samples in Prometheus' text exposition
format (0.0.4), for an existing Prometheus to scrape with an API token.

Each numeric column of a metric's rows is a family
`sentinel_pool_<metric>_<column>` (a gauge when the catalog lists the column
among the metric's gauges, else a counter, named with `_total`), labelled
with the monitored name (`source`), the database (`dbname`), the source's
tags and the row's text columns. Each source also has its status, whether it
answered, and when it was last collected. docs/pool-metrics.md tells the
rules (tag names, clashes, what is left out) a dashboard relies on.

The sample lines are written once, when collection records a sample
(exposition.py, history.record); a scrape only puts the family name and the
source's current labels before each.
"""

import datetime
import functools

import orjson
from flask import Blueprint, current_app

from ..auth.access import token_required
from ..contract import STRING, describe
from . import catalog, history, schedule
from .exposition import (
    BUILT_IN,
    columns_of,
    escape_help,
    escape_label_value,
    metric_name,
    sample_lines,
    tag_labels,
    taken_label_names,
)
from .models import Source

blueprint = Blueprint("pool_prometheus", __name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
PREFIX = "sentinel_pool_"
DISCOVERY = "postgres-continuous-discovery"
STATUS_FAMILIES = (
    ("source_up", "gauge", "1 when the source answered its last collection, else 0"),
    (
        "source_last_collection_timestamp_seconds",
        "gauge",
        "When the source was last collected (Unix time); absent until it was",
    ),
    ("source_status", "gauge", "The source's status, as its `status` label (value always 1)"),
)


# -- names -----------------------------------------------------------------------------------


@functools.cache
def family_name(metric, column):
    """(name, type) of a metric column's family."""
    gauge = column in catalog.metric(metric)["gauges"]
    name = metric_name(f"{PREFIX}{metric}_{column}")
    return (name, "gauge") if gauge else (name + "_total", "counter")


@functools.cache
def _line_starts(metric, columns):
    """[(column, what starts each line of its family before the source's
    labels)] of a metric's tab-separated numeric columns."""
    return [(column, family_name(metric, column)[0] + "{") for column in columns.split("\t")]


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
    """The families of one scrape, each gathering its lines from every
    source, written out family by family as the format requires."""

    def __init__(self):
        # {metric: {column: [lines of one sample, whole, "\n" between them, ...]}}
        self.metrics = {}
        self.status = {name: [] for name, _, _ in STATUS_FAMILIES}

    def add_source(self, source, status):
        labels = f'source="{escape_label_value(source["name"])}"'
        labels += tag_labels(source["tags"], {"source", "status"})[0]
        up, last, state = (PREFIX + name + "{" + labels for name, _, _ in STATUS_FAMILIES)
        self.status["source_up"].append(f"{up}}} {int(bool(source['connected']))}")
        if source["last_collected_at"] is not None:
            at = _epoch(source["last_collected_at"])
            self.status["source_last_collection_timestamp_seconds"].append(f"{last}}} {at}")
        self.status["source_status"].append(f'{state},status="{status}"}} 1')

    def add_sample(self, source, dbname, metric, lines):
        """One metric's latest sample from one of the source's databases, from
        its lines as collection wrote them (exposition.sample_lines): each line
        given its family's name and the source's labels as they are now."""
        if not lines:
            return
        header, columns, texts = columns_of(lines)
        tags, tag_names = source["tag_labels"]
        if tag_names and not tag_names.isdisjoint(taken := taken_label_names(header)):
            # A tag named like a column of this metric: renamed for all its rows.
            tags = tag_labels(source["tags"], taken)[0]
        base = f'source="{escape_label_value(monitored_name(source, dbname))}"'
        base += f',dbname="{escape_label_value(dbname)}"{tags}'
        families = self.metrics.setdefault(metric, {})
        for (column, start), text in zip(_line_starts(metric, columns), texts, strict=True):
            start += base
            samples = families.get(column)
            if samples is None:
                samples = families[column] = []
            samples.append(start + text.replace("\n", "\n" + start))

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
        yield f"# HELP {name} {escape_help(help_text)}\n# TYPE {name} {kind}\n"
        yield "\n".join(samples)
        yield "\n"


def exposition(now=None):
    """The text of a scrape, as chunks to send in turn: every source's status,
    and the latest samples of the sources that answered their last collection
    and are enabled. The state is read before it returns.

    A disabled or unreachable source keeps its status families only: its last
    samples are old, and Prometheus would store them again at every scrape as
    if they were new.

    A sample written before its lines were kept (their column null after an
    upgrade) has its rows parsed and its lines written here, until the
    source's next collection replaces it."""
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
    for source_id, dbname, metric, lines, data in history.latest(lines=True):
        if source_id in shown and metric in known:
            if lines is None:
                lines = sample_lines(metric, orjson.loads(data))
            out.add_sample(found[source_id], dbname, metric, lines)
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
