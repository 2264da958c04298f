"""The project's own exceptions, raised by plain modules and turned into HTTP
answers by one error handler (sentinel.api.errors)."""


class SentinelError(Exception):
    """Base of every error a caller is meant to see; its text is the message."""

    def __init__(self, message):
        super().__init__(message)
        self.message = message


class Invalid(SentinelError):
    """A well-formed value that cannot be accepted (400)."""


class BadJSON(SentinelError):
    """The request body is not JSON (400)."""

    def __init__(self, message="Invalid json format"):
        super().__init__(message)


class Unauthorized(SentinelError):
    """Missing or wrong credentials (401)."""


class NotFound(SentinelError):
    """The object the request names does not exist (404)."""


class Malformed(SentinelError):
    """A parameter is missing or not of the expected form (406)."""

    def __init__(self, parameter):
        super().__init__(f"Parameter '{parameter}' is malformed.")
        self.parameter = parameter


class NotSent(SentinelError):
    """A required parameter is absent (406), in the agent's words."""

    def __init__(self, parameter):
        super().__init__(f"Parameter '{parameter}' not sent.")
        self.parameter = parameter


class Conflict(SentinelError):
    """The change clashes with what exists (409)."""


class Throttled(SentinelError):
    """Too many failed attempts; retry after `retry_after` seconds (429)."""

    def __init__(self, retry_after):
        super().__init__("Too many failed login attempts, retry later.")
        self.retry_after = retry_after


class PostgresUnavailable(SentinelError):
    """The managed instance cannot be reached (503)."""

    def __init__(self, reason):
        super().__init__(f"PostgreSQL is unavailable: {reason}")
        self.reason = reason


class PostgresTimeout(SentinelError):
    """A query hit statement_timeout or lock_timeout (504)."""

    def __init__(self, reason):
        super().__init__(f"PostgreSQL did not answer in time: {reason}")


class NotReady(SentinelError):
    """Sentinel itself cannot serve yet, e.g. its state database is down (503)."""
