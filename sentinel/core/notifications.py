"""The audit log: who did what, as /notifications and the home page show it."""

from ..state import Notification

DATE_FORMAT = "%Y-%m-%dT%H:%M:%S"


def record(username, message):
    Notification.create(username=username, message=message)


def recent(limit=None):
    """Notifications newest first (all, or the newest `limit`), as the agent shapes them."""
    rows = (
        Notification.select(Notification.created_at, Notification.username, Notification.message)
        .order_by(Notification.created_at.desc(), Notification.id.desc())
        .limit(limit)
        .tuples()
    )
    return [
        {
            "date": created_at.strftime(DATE_FORMAT),
            "username": username,
            "message": message,
        }
        for created_at, username, message in rows
    ]
