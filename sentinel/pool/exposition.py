"""Prometheus' text exposition format (0.0.4) for the pool's samples: the
naming rules of docs/pool-metrics.md, and each latest sample's lines written
once, when collection records it, so a scrape of GET /metrics neither parses
rows nor writes numbers. No Flask here: history writes the lines, the route
(prometheus.py) serves them.

A sample's lines (pool_latest_sample.lines) are its metric's numeric columns,
each with the rows' own labels only:

    <label names of the first row's columns, comma-joined>
    =<the numeric columns, tab-separated>
    =,datname="app"} 42
    ,datname="postgres"} 7
    =<the next column's lines>
    ...

Each sample line starts at a line start (or after `=`), and that is where
the scrape puts the family name and the source's labels (`source`,
`dbname`, its tags), as they are then: a source renamed or retagged after
the sample was written shows its new labels at the next scrape. No label
value holds a raw newline (it is escaped), so a line start is never inside
one, and a line starting with `=` always starts a column. The first line's
names are what a tag must not be called on this metric (it is renamed
`tag_<name>` there).
"""

import functools
import re

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
COLUMN_MARK = "\n="

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


def metric_name(text):
    """A metric or column name with every character outside `[a-zA-Z0-9_]` made `_`."""
    return _INVALID_NAME_CHARACTER.sub("_", text)


def _valid_label_name(name):
    # Names starting with "__" are Prometheus' own.
    return bool(_LABEL_NAME.fullmatch(name)) and not name.startswith("__")


def tag_label_name(key):
    """The label a tag key becomes: the key itself when it is a valid label
    name, else `tag_` and the key with every other character made `_`."""
    if _valid_label_name(key):
        return key
    return "tag_" + metric_name(key)


@functools.cache
def column_label_name(column):
    """The label a row's text column becomes: `row_<column>` when it would
    be a built-in label or is no valid label name as it is."""
    if column in BUILT_IN or column == "status" or not _valid_label_name(column):
        return "row_" + metric_name(column)
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
def taken_label_names(header):
    """The label names a sample's rows may carry, its own and built in, from
    the first line of its lines."""
    return BUILT_IN | frozenset(header.split(",")) if header else BUILT_IN


# -- a sample's lines ------------------------------------------------------------------------


def sample_lines(metric, rows):
    """The lines of one metric's rows, as pool_latest_sample.lines keeps them
    (see the module's docstring); "" when there are no rows or no values.

    Values as collected (an int or float as Python writes it, a boolean as
    1 or 0); a null, or any other type, is no sample."""
    if not rows:
        return ""
    identifiers = IDENTIFIERS.get(metric, NOTHING)
    left_out = LEFT_OUT.get(metric, NOTHING)
    columns = {}
    for row in rows:
        labels = ""
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
        labels += "} "
        for column, value in values:
            lines = columns.get(column)
            if lines is None:
                lines = columns[column] = []
            lines.append(f"{labels}{value}")
    if not columns:
        return ""
    header = ",".join(column_label_name(column) for column in rows[0])
    return COLUMN_MARK.join(
        [header, "\t".join(columns), *("\n".join(lines) for lines in columns.values())]
    )


def columns_of(lines):
    """(header, the columns tab-separated, [each column's lines]) of a
    sample's lines, as sample_lines wrote them; None when it has no rows."""
    if not lines:
        return None
    header, columns, *texts = lines.split(COLUMN_MARK)
    return header, columns, texts
