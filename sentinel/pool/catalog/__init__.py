"""The metric catalog: what agentless collection runs on a source, as data.

`metrics.toml` beside this module holds every metric (SQL keyed by minimum
PostgreSQL major version, description, level, node status, gauges) and the
presets naming metrics and their intervals. It is read and checked once per
process; the pgwatch dialect serves it through `pgwatch_metrics()` and
`pgwatch_presets()`, and collection picks a query with `sql_for()`.
"""

import functools
import tomllib
from pathlib import Path

from ...errors import NotFound

CATALOG_FILE = Path(__file__).parent / "metrics.toml"
NODE_STATUSES = ("any", "primary", "standby")
REQUIREMENT_KINDS = ("extension", "role")
_METRIC_KEYS = {"description", "instance_level", "node_status", "gauges", "requires", "sql"}
_REQUIRED_METRIC_KEYS = _METRIC_KEYS - {"requires"}


class CatalogError(Exception):
    """metrics.toml does not describe a usable catalog: a bug in the file, not in a request."""


@functools.cache
def catalog():
    """The checked catalog: {"metrics", "presets", "collection_rates"}, read once."""
    with CATALOG_FILE.open("rb") as f:
        data = tomllib.load(f)
    check(data)
    return data


def check(data):
    """Raise CatalogError naming the first thing wrong in a parsed catalog."""
    metrics = data.get("metrics") or {}
    presets = data.get("presets") or {}
    if not metrics:
        raise CatalogError("no metrics")
    for name, metric in metrics.items():
        _check_metric(name, metric)
    for name, preset in presets.items():
        if not isinstance(preset.get("description"), str):
            raise CatalogError(f"preset {name}: description missing")
        intervals = preset.get("metrics")
        if not intervals:
            raise CatalogError(f"preset {name}: no metrics")
        for metric, seconds in intervals.items():
            if metric not in metrics:
                raise CatalogError(f"preset {name}: unknown metric {metric}")
            if not isinstance(seconds, int) or isinstance(seconds, bool) or seconds < 1:
                raise CatalogError(f"preset {name}: {metric} interval must be a positive integer")
    for rate, preset in (data.get("collection_rates") or {}).items():
        if preset not in presets:
            raise CatalogError(f"collection rate {rate}: unknown preset {preset}")


def _check_metric(name, metric):
    missing = _REQUIRED_METRIC_KEYS - metric.keys()
    unknown = metric.keys() - _METRIC_KEYS
    if missing or unknown:
        raise CatalogError(f"metric {name}: missing {sorted(missing)}, unknown {sorted(unknown)}")
    if not isinstance(metric["instance_level"], bool):
        raise CatalogError(f"metric {name}: instance_level must be true or false")
    if metric["node_status"] not in NODE_STATUSES:
        raise CatalogError(f"metric {name}: node_status must be one of {NODE_STATUSES}")
    if not all(isinstance(column, str) for column in metric["gauges"]):
        raise CatalogError(f"metric {name}: gauges must be column names")
    if "requires" in metric:
        kind, _, what = metric["requires"].partition(":")
        if kind not in REQUIREMENT_KINDS or not what:
            raise CatalogError(f"metric {name}: requires must be extension:<name> or role:<name>")
    if not metric["sql"]:
        raise CatalogError(f"metric {name}: no SQL for any version")
    for version, sql in metric["sql"].items():
        if not version.isdigit() or version != str(int(version)):
            raise CatalogError(f"metric {name}: SQL key {version!r} is not a major version")
        if not isinstance(sql, str) or not sql.strip():
            raise CatalogError(f"metric {name}: SQL for {version} is empty")


def metric_names():
    return sorted(catalog()["metrics"])


def metric(name):
    """One metric's definition, or NotFound."""
    try:
        return catalog()["metrics"][name]
    except KeyError:
        raise NotFound(f"no metric {name}") from None


def sql_for(name, server_major):
    """The metric's SQL for a server's major version (15 for 15.4), or None.

    The SQL keyed by that major version when there is one, else the one with
    the greatest key below it; None when every key is above it (the metric is
    skipped on that server)."""
    versions = [int(key) for key in metric(name)["sql"] if int(key) <= server_major]
    if not versions:
        return None
    return metric(name)["sql"][str(max(versions))]


def preset(name):
    """A preset's {metric: seconds}, or NotFound."""
    try:
        return dict(catalog()["presets"][name]["metrics"])
    except KeyError:
        raise NotFound(f"no preset {name}") from None


def preset_for_collection_rate(rate):
    """The preset a Datasentinel collection-rate (`low` or `high`) stands for."""
    try:
        return catalog()["collection_rates"][rate]
    except KeyError:
        raise NotFound(f"no collection rate {rate}") from None


def pgwatch_metrics():
    """pgwatch's GET /metric: {name: {"SQLs", "InitSQL", "NodeStatus", ...}}."""
    return {
        name: {
            "SQLs": {version: sql.strip() for version, sql in m["sql"].items()},
            "InitSQL": "",
            # pgwatch leaves NodeStatus empty for a metric collected on any node.
            "NodeStatus": "" if m["node_status"] == "any" else m["node_status"],
            "Gauges": list(m["gauges"]),
            "IsInstanceLevel": m["instance_level"],
            "StorageName": "",
            "Description": m["description"],
        }
        for name, m in sorted(catalog()["metrics"].items())
    }


def pgwatch_presets():
    """pgwatch's GET /preset: {name: {"Description", "Metrics": {metric: seconds}}}."""
    return {
        name: {"Description": p["description"], "Metrics": dict(p["metrics"])}
        for name, p in catalog()["presets"].items()
    }
