"""The audit log: who did what, as /notifications and the home page show it."""

from .state import Notification, compiled_once, database

DATE_FORMAT = "%Y-%m-%dT%H:%M:%S"

_ordered = (Notification.created_at.desc(), Notification.id.desc())
_columns = (Notification.created_at, Notification.username, Notification.message)
# /dashboard embeds the newest notifications on every call: keep that query cheap.
_newest_sql = compiled_once(lambda: Notification.select(*_columns).order_by(*_ordered).limit(1))


def record(username, message):
    Notification.create(username=username, message=message)


def recent(limit=None):
    """Notifications newest first (all, or the newest `limit`), as the agent shapes them."""
    if limit is None:
        rows = Notification.select(*_columns).order_by(*_ordered).tuples()
    else:
        rows = database.execute_sql(_newest_sql(), (limit,)).fetchall()
    return [
        {
            "date": Notification.created_at.python_value(created_at).strftime(DATE_FORMAT),
            "username": username,
            "message": message,
        }
        for created_at, username, message in rows
    ]
