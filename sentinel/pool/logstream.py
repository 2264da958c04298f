"""Sentinel's log lines, live, for pgwatch's `GET /log` WebSocket (in progress)."""


def register(blueprint):
    """Add the `/log` route to pgwatch's blueprint."""
