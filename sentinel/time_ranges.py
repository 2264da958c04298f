"""The time ranges a chart page offers: the usual ones its history is long
enough for, and all that it keeps."""

USUAL = (15 * 60, 3600, 6 * 3600, 24 * 3600)  # seconds

# The `range` query parameter of the chart pages and their data: seconds.
RANGE = {"type": "integer", "minimum": 1, "maximum": 10**8}


def offered(kept):
    """The ranges (seconds) worth offering over a history of `kept` seconds:
    the usual ones shorter than it, then all of it."""
    return [seconds for seconds in USUAL if seconds < kept] + [kept]


def chosen(requested, kept):
    """The range to show: `requested` when offered, else all that is kept (a
    link made before the retention changed still opens the page)."""
    return requested if requested in offered(kept) else kept
