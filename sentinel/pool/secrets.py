"""The pool's passwords: encrypted at rest with Fernet, and shown obfuscated.

The key is the `pool_secret_key` setting when set, else the `pool.key` file
the first Sentinel process makes in the state dir (0600). It is bound once per
process at start, like the state database, so the store and the collection
jobs encrypt and decrypt without being handed settings.

Obfuscation follows Sequin's rule in every dialect: enough of a password shows
for a person to tell which one is stored, never enough to use it.
"""

from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

import psycopg2
import psycopg2.extensions
from cryptography.fernet import Fernet, InvalidToken

from .. import config
from ..errors import Invalid, SecretUnreadable

KEY_FILE = "pool.key"
SETTING = "SENTINEL_POOL_SECRET_KEY"
URL_SCHEMES = ("postgresql://", "postgres://")  # what libpq reads as a URI
MAX_HIDDEN = 20  # stars shown at most: the length of a long password stays unknown


class Keyring:
    """The key this process encrypts with, and where it came from (for errors)."""

    def __init__(self):
        self.fernet = None
        self.origin = None

    def bind(self, settings):
        """Take the key from the setting, else from the state dir's key file,
        which the first process to get here makes."""
        if settings["pool_secret_key"]:
            key, origin = settings["pool_secret_key"], SETTING
        else:
            path = Path(settings["state_dir"]) / KEY_FILE
            key = config.stored_key(path, SETTING, lambda: Fernet.generate_key().decode())
            origin = str(path)
        try:
            self.fernet = Fernet(key)
        except ValueError:
            raise config.ConfigError(f"{SETTING}: {origin} holds no usable key") from None
        self.origin = origin

    def use(self):
        if self.fernet is None:
            raise RuntimeError("sentinel.pool.secrets.bind() was not called")
        return self.fernet


keyring = Keyring()


def bind(settings):
    """Use the pool key the settings name (once per process, at start)."""
    keyring.bind(settings)


def encrypt(text):
    """The token kept in the state for the password `text`."""
    return keyring.use().encrypt(text.encode()).decode("ascii")


def decrypt(token):
    """The password a token of encrypt() holds.

    A token made with another key cannot be read: the error says which key is
    in use and what to do, and carries neither the token nor a password."""
    try:
        return keyring.use().decrypt(token.encode("ascii")).decode()
    except (InvalidToken, UnicodeError):
        raise SecretUnreadable(
            "A stored password cannot be decrypted with the pool key in use"
            f" ({keyring.origin}): it was encrypted with another key. Put back the"
            f" key it was stored with ({SETTING}, or {KEY_FILE} in the state"
            " directory), or enter the password again."
        ) from None


def obfuscate(password):
    """Sequin's rule: empty stays empty, up to 5 characters all hidden, 6 to 9
    keep the first and last, 10 or more the first 3 and the last with at most
    20 stars between (`secret-password` -> `sec***********d`)."""
    if not password:
        return password
    length = len(password)
    if length <= 5:
        return "*" * length
    if length <= 9:
        return password[0] + "*" * (length - 2) + password[-1]
    return password[:3] + "*" * min(length - 4, MAX_HIDDEN) + password[-1]


def obfuscate_dsn(conninfo):
    """A libpq URL or keyword string with its password obfuscated. A URL keeps
    the rest as written; its password may be in its user part or in its query
    (?password=), where libpq reads it too. A keyword string is written back
    by psycopg2 from what libpq parsed (same parameters, maybe reordered)."""
    if conninfo.startswith(URL_SCHEMES):
        return _obfuscate_url(conninfo)
    try:
        params = psycopg2.extensions.parse_dsn(conninfo)
    except psycopg2.ProgrammingError:
        # libpq's message quotes the part it stumbled on, maybe the password.
        raise Invalid("conninfo: not a libpq connection string") from None
    if not params.get("password"):
        return conninfo
    params["password"] = obfuscate(params["password"])
    return psycopg2.extensions.make_dsn(**params)


def _obfuscate_url(url):
    try:
        parts = urlsplit(url)
    except ValueError:
        raise Invalid("conninfo: not a libpq connection URL") from None
    netloc, query = parts.netloc, parts.query
    userinfo, at, hosts = netloc.rpartition("@")
    user, colon, password = userinfo.partition(":")
    if colon and password:
        netloc = f"{user}:{_hidden_in_url(password)}{at}{hosts}"
    if query:
        query = "&".join(_hidden_parameter(item) for item in query.split("&"))
    # Put together by hand: urlunsplit() writes postgresql:/db for postgresql:///db.
    shown = f"{parts.scheme}://{netloc}{parts.path}"
    shown += f"?{query}" if query else ""
    shown += f"#{parts.fragment}" if parts.fragment else ""
    return shown


def _hidden_parameter(item):
    name, equals, value = item.partition("=")
    if equals and unquote(name) == "password" and value:
        return f"{name}={_hidden_in_url(value)}"
    return item


def _hidden_in_url(encoded):
    # libpq decodes %XX only (a + stays a +): so do we, and write back the same way.
    return quote(obfuscate(unquote(encoded)), safe="*")
