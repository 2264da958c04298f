"""The project's own exceptions, raised by plain modules and turned into HTTP
answers by one error handler (sentinel.answers). Each carries its status."""


class SentinelError(Exception):
    """Base of every error a caller is meant to see; its text is the message."""

    status = 500

    def __init__(self, message, field=None):
        super().__init__(message)
        self.message = message
        self.field = field  # the input field at fault, when there is one

    @property
    def headers(self):
        """HTTP headers the answer carries besides the body."""
        return {}


class Invalid(SentinelError):
    """A well-formed value that cannot be accepted."""

    status = 400


class BadJSON(SentinelError):
    """The request body is not JSON."""

    status = 400

    def __init__(self, message="Invalid json format"):
        super().__init__(message)


class Unauthorized(SentinelError):
    """Missing or wrong credentials."""

    status = 401


class Forbidden(SentinelError):
    """Signed in, but the user's role does not allow the change asked."""

    status = 403


class NotFound(SentinelError):
    """The object the request names does not exist."""

    status = 404


class Malformed(SentinelError):
    """A parameter is missing or not of the expected form."""

    status = 406

    def __init__(self, parameter):
        super().__init__(f"Parameter '{parameter}' is malformed.", field=parameter)
        self.parameter = parameter


class NotSent(SentinelError):
    """A required parameter is absent, in the agent's words."""

    status = 406

    def __init__(self, parameter):
        super().__init__(f"Parameter '{parameter}' not sent.", field=parameter)
        self.parameter = parameter


class Conflict(SentinelError):
    """The change clashes with what exists."""

    status = 409


class Throttled(SentinelError):
    """Too many failed attempts; retry after `retry_after` seconds."""

    status = 429

    def __init__(self, retry_after):
        super().__init__("Too many failed login attempts, retry later.")
        self.retry_after = retry_after

    @property
    def headers(self):
        return {"Retry-After": str(self.retry_after)}


class PostgresUnavailable(SentinelError):
    """The managed instance cannot be reached."""

    status = 503

    def __init__(self, reason):
        super().__init__(f"PostgreSQL is unavailable: {reason}")
        self.reason = reason


class SourceUnreachable(SentinelError):
    """A pool source refused the connection or the login, or did not answer
    in time; the message is the driver's reason, without the password."""

    status = 400


class NotReady(SentinelError):
    """Sentinel itself cannot serve yet, e.g. its state database is down."""

    status = 503


class SecretUnreadable(SentinelError):
    """A password stored in the state that the key in use cannot decrypt:
    the key was changed or lost since it was stored."""

    status = 500


class PostgresTimeout(SentinelError):
    """A query hit statement_timeout or lock_timeout."""

    status = 504

    def __init__(self, reason):
        super().__init__(f"PostgreSQL did not answer in time: {reason}")
