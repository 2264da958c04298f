"""Sentinel's settings: a TOML file overridden by SENTINEL_* environment variables.

Every setting is declared once in SETTINGS with its default and its parser, so
the file, the environment and the error messages all speak of the same names.
A bad value raises ConfigError whose text names the setting, for the service to
print as one line at start.
"""

import os
import re
import secrets
import shlex
import socket
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import psycopg2.extensions
from cryptography.fernet import Fernet

PACKAGE_DIR = Path(__file__).resolve().parent
# A checkout (wsgi.py beside the package) keeps its state in var/; an
# installed Sentinel in /var/lib/sentinel, where systemd creates it.
IN_CHECKOUT = (PACKAGE_DIR.parent / "wsgi.py").exists()
DEFAULT_STATE_DIR = str(PACKAGE_DIR.parent / "var") if IN_CHECKOUT else "/var/lib/sentinel"
DEFAULT_CONFIG_FILE = "/etc/sentinel/sentinel.conf"


def resource_dir(name):
    """templates/ or static/: inside the installed package, or beside it in a checkout."""
    packaged = PACKAGE_DIR / name
    return packaged if packaged.is_dir() else PACKAGE_DIR.parent / name


ENV_PREFIX = "SENTINEL_"


class ConfigError(Exception):
    """A setting is missing, unreadable or out of range; the text names it."""


@dataclass(frozen=True)
class Setting:
    name: str
    default: object
    parse: object  # callable(str-or-toml-value) -> value, raising ValueError
    help: str

    @property
    def env(self):
        return ENV_PREFIX + self.name.upper()


def _text(value):
    if not isinstance(value, str):
        raise ValueError("expected a string")
    return value


def _integer(low, high=None):
    def parse(value):
        if isinstance(value, bool):
            raise ValueError("expected an integer")
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise ValueError(f"expected an integer, got {value!r}") from None
        if number < low or (high is not None and number > high):
            bounds = f"between {low} and {high}" if high is not None else f">= {low}"
            raise ValueError(f"must be {bounds}, got {number}")
        return number

    return parse


def _boolean(value):
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected true or false, got {value!r}")


def _bind(value):
    host, sep, port = _text(value).rpartition(":")
    if not sep or not host:
        raise ValueError(f"expected HOST:PORT, got {value!r}")
    _integer(1, 65535)(port)
    return value


def _dsn(value):
    try:
        psycopg2.extensions.parse_dsn(_text(value))
    except psycopg2.ProgrammingError as exc:
        reason = str(exc).strip()
        if "password" in value or "@" in value:
            # libpq quotes the word it stumbled on, which can be the password.
            reason = re.sub(r'"[^"]*"', '"***"', reason)
        raise ValueError(f"invalid connection string: {reason}") from None
    return value


def _pg_ctl(value):
    text = _text(value)
    if not text:
        return text
    try:
        words = shlex.split(text)
    except ValueError as exc:
        raise ValueError(f"cannot be split into words: {exc}") from None
    if not any("{action}" in word for word in words):
        raise ValueError(
            "must contain {action}, e.g. "
            "'/usr/lib/postgresql/15/bin/pg_ctl {action} -D /var/lib/postgresql/15/main -w'"
        )
    return text


def _redis_url(value):
    scheme = urlsplit(_text(value)).scheme
    if scheme not in ("redis", "rediss", "unix"):
        shown = _masked_url(value)
        raise ValueError(f"expected a redis://, rediss:// or unix:// URL, got {shown!r}")
    return value


def _database_url(value):
    text = _text(value)
    if text and urlsplit(text).scheme not in ("sqlite", "postgresql", "postgres"):
        raise ValueError(f"expected sqlite:///PATH or postgresql://..., got {_masked_url(text)!r}")
    return text


def _tls_mode(value):
    text = _text(value).strip().lower()
    if text not in ("", "self-signed"):
        raise ValueError(f"expected self-signed (or nothing), got {value!r}")
    return text


def _log_format(value):
    text = _text(value).strip().lower()
    if text not in ("text", "json"):
        raise ValueError(f"expected text or json, got {value!r}")
    return text


def _fernet_key(value):
    text = _text(value).strip()
    if not text:
        return text
    try:
        Fernet(text)
    except ValueError:
        # The value is a secret: the message never repeats it.
        raise ValueError(
            "expected a Fernet key (32 bytes in url-safe base64), e.g. the output of"
            " python3 -c 'from cryptography.fernet import Fernet;"
            " print(Fernet.generate_key().decode())'"
        ) from None
    return text


def _log_level(value):
    level = _text(value).upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ValueError(f"expected DEBUG, INFO, WARNING or ERROR, got {value!r}")
    return level


SETTINGS = (
    Setting("pg_dsn", "", _dsn, "managed instance, libpq URL or keyword string"),
    Setting("pg_data", "", _text, "data directory of the managed instance"),
    Setting("pg_ctl", "", _pg_ctl, "pg_ctl command template for administration"),
    Setting("pg_ctl_timeout", 60, _integer(1, 600), "s for pg_ctl and for a start"),
    Setting("redis_url", "redis://127.0.0.1:6379/0", _redis_url, "Redis for RQ"),
    Setting("database", "", _database_url, "Sentinel's own state (default SQLite)"),
    Setting("state_dir", DEFAULT_STATE_DIR, _text, "state directory"),
    Setting("bind", "127.0.0.1:2345", _bind, "HOST:PORT gunicorn listens on"),
    Setting("secret_key", "", _text, "signs cookies; generated when empty"),
    Setting("pool_secret_key", "", _fernet_key, "encrypts the pool's passwords; else pool.key"),
    Setting("admin_password", "", _text, "password of 'admin' for make run"),
    Setting("agent_key", "", _text, "key read-only routes accept as ?key="),
    Setting("hostname", "", _text, "name reported by /discover (default FQDN)"),
    Setting("session_timeout", 3600, _integer(60, 7 * 86400), "idle seconds"),
    Setting("statement_timeout", 5000, _integer(100), "ms, monitoring sessions"),
    Setting("lock_timeout", 1000, _integer(10), "ms, monitoring sessions"),
    Setting("connect_timeout", 5, _integer(1, 60), "s, connecting to PostgreSQL"),
    Setting("pg_pool_size", 3, _integer(1, 10), "connections per process"),
    Setting("login_max_failures", 5, _integer(1), "failures per username"),
    Setting("login_max_failures_per_address", 20, _integer(1), "per client"),
    Setting("login_failure_window", 300, _integer(10), "seconds"),
    Setting("max_body_size", 1024 * 1024, _integer(1024), "bytes"),
    Setting("tls_cert", "", _text, "PEM certificate (chain) to serve HTTPS with"),
    Setting("tls_key", "", _text, "PEM private key of tls_cert"),
    Setting("tls", "", _tls_mode, "self-signed: make a certificate in the state dir"),
    Setting("cookie_secure", False, _boolean, "send cookies over HTTPS only (on with TLS)"),
    Setting("trusted_proxies", 0, _integer(0, 5), "reverse proxies in front"),
    Setting("log_level", "INFO", _log_level, "DEBUG, INFO, WARNING, ERROR"),
    Setting("log_format", "text", _log_format, "text (key=value) or json (one object a line)"),
    Setting("access_log", False, _boolean, "log every HTTP request"),
    Setting("client_timeout", 10, _integer(1, 300), "s a stalled client may hold a connection"),
    Setting("dashboard_interval", 2, _integer(1, 3600), "s between dashboard samples"),
    Setting("dashboard_history", 150, _integer(1, 10000), "dashboard samples kept"),
    Setting("monitoring_interval", 60, _integer(10, 3600), "s between probe runs"),
    Setting("monitoring_retention", 21600, _integer(600, 30 * 86400), "s of probe history"),
    Setting("maintenance_lock_timeout", 5000, _integer(10, 3_600_000), "ms a job waits for a lock"),
    Setting("statements_interval", 300, _integer(10, 86400), "s between statement snapshots"),
    Setting("statements_retention", 604800, _integer(3600, 90 * 86400), "s of statement history"),
    Setting("statements_budget", 200, _integer(1, 100_000), "MB the statement history may take"),
    Setting("pool_dispatch_interval", 5, _integer(1, 60), "s between two looks for due pool runs"),
    Setting("pool_discovery_interval", 300, _integer(2, 86400), "s between database discoveries"),
    Setting("pool_retention", 7 * 86400, _integer(3600, 366 * 86400), "s of pool samples kept"),
)
BY_NAME = {setting.name: setting for setting in SETTINGS}


def config_path(environ=None):
    environ = os.environ if environ is None else environ
    return environ.get(ENV_PREFIX + "CONFIG") or DEFAULT_CONFIG_FILE


def _read_file(path):
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        return {}
    except PermissionError:
        raise ConfigError(f"SENTINEL_CONFIG: cannot read {path}: permission denied") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"SENTINEL_CONFIG: {path} is not valid TOML: {exc}") from None
    unknown = sorted(set(data) - set(BY_NAME))
    if unknown:
        raise ConfigError(f"SENTINEL_CONFIG: unknown setting {unknown[0]!r} in {path}")
    return data


def explicitly_set(name, environ=None):
    """Whether the setting `name` comes from the environment or the file, not
    from its default."""
    environ = os.environ if environ is None else environ
    return BY_NAME[name].env in environ or name in _read_file(config_path(environ))


def load(environ=None, overrides=None, prepare=True):
    """Settings as a dict keyed by setting name: defaults < file < env < overrides.

    With prepare (what a running Sentinel needs), the state directory and the
    secret key in it are created when missing; without, nothing is written
    and what is missing is said in `warnings`."""
    environ = os.environ if environ is None else environ
    path = config_path(environ)
    from_file = _read_file(path)
    values = {"config_file": path}
    for setting in SETTINGS:
        raw, origin = setting.default, None
        if setting.name in from_file:
            raw, origin = from_file[setting.name], f"{setting.name} in {path}"
        if setting.env in environ:
            raw, origin = environ[setting.env], setting.env
        if overrides and setting.name in overrides:
            raw, origin = overrides[setting.name], setting.env
        if origin is None:
            values[setting.name] = raw
            continue
        try:
            values[setting.name] = setting.parse(raw)
        except ValueError as exc:
            raise ConfigError(f"{origin}: {exc}") from None
    return _derive(values, prepare)


def _derive(values, prepare):
    """Fill the settings whose default depends on others, and check the state dir."""
    values["warnings"] = warnings = []
    state_dir = Path(values["state_dir"])
    if prepare:
        try:
            state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            reason = f"cannot create {state_dir}: {exc.strerror}"
            raise ConfigError(f"SENTINEL_STATE_DIR: {reason}") from None
    if not state_dir.is_dir():
        warnings.append(f"{state_dir} does not exist yet (systemd's StateDirectory= makes it)")
    elif not os.access(state_dir, os.W_OK):
        if prepare:
            raise ConfigError(f"SENTINEL_STATE_DIR: {state_dir} is not writable")
        warnings.append(f"{state_dir} is not writable by this user")
    values["state_dir"] = str(state_dir)
    if not values["database"]:
        values["database"] = f"sqlite:///{state_dir / 'sentinel.db'}"
    if not values["hostname"]:
        values["hostname"] = socket.getfqdn()
        if "." not in values["hostname"]:
            warnings.append(
                f"the host's name {values['hostname']!r} has no domain: two Sentinels both"
                " answering it merge into one instance in the temBoard UI; set"
                " SENTINEL_HOSTNAME to a name of this host that is unique"
            )
    if not values["secret_key"] and prepare:
        values["secret_key"] = _stored_secret_key(state_dir / "secret_key")
    _derive_tls(values, state_dir)
    return values


def _derive_tls(values, state_dir):
    """HTTPS: a certificate and key given, or made once in the state dir."""
    if values["tls"] == "self-signed" and not values["tls_cert"]:
        values["tls_cert"] = str(state_dir / "tls" / "cert.pem")
        values["tls_key"] = str(state_dir / "tls" / "key.pem")
    elif bool(values["tls_cert"]) != bool(values["tls_key"]):
        missing = "SENTINEL_TLS_KEY" if values["tls_cert"] else "SENTINEL_TLS_CERT"
        raise ConfigError(f"{missing}: HTTPS needs both a certificate and its key")
    elif values["tls_cert"]:
        for name in ("tls_cert", "tls_key"):
            if not os.access(values[name], os.R_OK):
                raise ConfigError(f"SENTINEL_{name.upper()}: cannot read {values[name]}")
    values["https"] = bool(values["tls_cert"])
    values["cookie_secure"] = values["cookie_secure"] or values["https"]


SECRETS = ("secret_key", "pool_secret_key", "admin_password", "agent_key")


def without_password(url_or_dsn):
    """A connection string or URL fit to print: its password left out, from
    the user part of a URL and from its query (?password=, which libpq and
    redis-py both read)."""
    if "://" in url_or_dsn:
        shown = re.sub(r"([?&]password=)[^&#]*", r"\g<1>***", url_or_dsn)
        parts = urlsplit(shown)
        if parts.password is None:
            return shown
        netloc = parts.netloc.rsplit("@", 1)[1]
        user = f"{parts.username}:***@" if parts.username else ":***@"
        return parts._replace(netloc=user + netloc).geturl()
    params = psycopg2.extensions.parse_dsn(url_or_dsn)
    params.pop("password", None)
    return psycopg2.extensions.make_dsn(**params)


def _masked_url(text):
    """A URL refused as a setting, fit for the error message: what comes
    before an @ may hold a password, even in something that is no URL."""
    try:
        if "://" in text:
            return without_password(text)
    except ValueError:
        pass
    return f"***@{text.rsplit('@', 1)[1]}" if "@" in text else text


def printable(settings):
    """{setting: value} with secrets masked and passwords left out of URLs."""
    shown = {}
    for setting in SETTINGS:
        value = settings[setting.name]
        if setting.name in SECRETS and value:
            value = "********"
        elif setting.name in ("pg_dsn", "redis_url", "database") and value:
            value = without_password(value)
        shown[setting.name] = value
    return shown


def _stored_secret_key(path):
    key = stored_key(path, "SENTINEL_SECRET_KEY", lambda: secrets.token_hex(32))
    if len(key) < 32:
        raise ConfigError(f"SENTINEL_SECRET_KEY: {path} holds no usable key")
    return key


def stored_key(path, setting, make):
    """The key kept in the file `path` (0600), made by make() once by whichever
    process is first; `setting` is what an error names.

    The key is written to a private temporary file (created exclusively, 0600)
    and linked into place, so a process starting at the same moment reads
    either nothing or the whole key, and never a key others may read.
    """
    if not path.exists():
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(make() + "\n")
            os.link(temporary, path)
        except FileExistsError:
            pass
        finally:
            os.unlink(temporary)
    try:
        return path.read_text().strip()
    except OSError as exc:
        raise ConfigError(f"{setting}: cannot read {path}: {exc.strerror}") from None
