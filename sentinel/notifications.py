"""The audit log: who did what, as /notifications and the home page show it."""

from .state import Notification

DATE_FORMAT = "%Y-%m-%dT%H:%M:%S"


def record(username, message):
    Notification.create(username=username, message=message)


def recent(limit=None):
    """Notifications newest first, as the agent API shapes them."""
    query = Notification.select().order_by(Notification.created_at.desc(), Notification.id.desc())
    if limit is not None:
        query = query.limit(limit)
    return [
        {
            "date": row.created_at.strftime(DATE_FORMAT),
            "username": row.username,
            "message": row.message,
        }
        for row in query
    ]
