"""What a source collects and how often, and the one word for how it is doing.

A source collects its custom metrics when it has some, else its preset, else
the preset its Datasentinel collection rate stands for. Metrics the catalog
does not know (a pgwatch client may name its own) are left out: collection
runs only the catalog's SQL.
"""

import datetime

from ..errors import NotFound
from . import catalog

DISABLED = "disabled"
NOT_CHECKED = "not checked yet"
UNREACHABLE = "unreachable"
LATE = "late"
CONNECTED = "connected"
STATUSES = (CONNECTED, LATE, UNREACHABLE, NOT_CHECKED, DISABLED)


def intervals(source):
    """{metric: seconds} a source (a store dict or row) collects."""
    wanted = source["metrics"] or _preset(source["preset"])
    if not wanted:
        wanted = _preset(catalog.preset_for_collection_rate(source["collection_rate"]))
    known = catalog.catalog()["metrics"]
    return {metric: seconds for metric, seconds in wanted.items() if metric in known}


def groups(source):
    """{seconds: [metric, ...]}: the metrics of a source due together."""
    found = {}
    for metric, seconds in sorted(intervals(source).items()):
        found.setdefault(seconds, []).append(metric)
    return found


def _preset(name):
    if not name:
        return {}
    try:
        return catalog.preset(name)
    except NotFound:
        return {}


def status(source, now=None):
    """One of STATUSES for a store dict (its `last_collected_at` a naive UTC
    datetime or None)."""
    if not source["enabled"]:
        return DISABLED
    if source["connected"] is None:
        return NOT_CHECKED
    if not source["connected"]:
        return UNREACHABLE
    last = source["last_collected_at"]
    if last is None:
        return LATE
    every = min(intervals(source).values(), default=60)
    now = now or datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
    if (now - last).total_seconds() > 2 * every:
        return LATE
    return CONNECTED
