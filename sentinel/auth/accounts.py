"""Users and their passwords (argon2id through argon2-cffi), and sign-in."""

import functools
import logging
import re

import argon2
import peewee

from ..errors import Conflict, Invalid, Malformed, NotFound, Throttled
from ..state import User
from . import throttle

# The agent's own rules, so that any name or password it took is taken here.
USERNAME_RE = re.compile(r"[a-z0-9]{3,16}")
MIN_PASSWORD, MAX_PASSWORD = 5, 256  # well-formed at sign-in
MIN_NEW_PASSWORD = 8
# An admin changes things (kill, control, settings, jobs); a viewer reads.
ADMIN, VIEWER = "admin", "viewer"
ROLES = (ADMIN, VIEWER)

logger = logging.getLogger(__name__)
hasher = argon2.PasswordHasher()


@functools.cache
def _dummy_hash():
    # Verified against when the user does not exist, so that an unknown name
    # takes as long to refuse as a wrong password.
    return hasher.hash("not a password of anyone")


def check_username(username):
    if not isinstance(username, str) or not USERNAME_RE.fullmatch(username):
        raise Malformed("username")
    return username


def check_password(password):
    if not isinstance(password, str) or not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise Malformed("password")
    try:
        password.encode()  # what argon2 hashes: a lone surrogate has no UTF-8
    except UnicodeEncodeError:
        raise Malformed("password") from None
    return password


def _check_new_password(password):
    check_password(password)
    if len(password) < MIN_NEW_PASSWORD:
        raise Invalid(f"A password needs at least {MIN_NEW_PASSWORD} characters.")


def check_role(role):
    if role not in ROLES:
        raise Invalid(f"A role is one of: {', '.join(ROLES)}.")
    return role


def create_user(username, password, role=None):
    """A new user. Without a role, the first user is an admin and the others viewers."""
    check_username(username)
    _check_new_password(password)
    if role is None:
        role = VIEWER if User.select().exists() else ADMIN
    check_role(role)
    try:
        return User.create(username=username, password_hash=hasher.hash(password), role=role)
    except peewee.IntegrityError:
        raise Conflict(f"User {username!r} already exists.") from None


def get_user(username):
    user = User.get_or_none(User.username == username)
    if user is None:
        raise NotFound(f"User {username!r} not found.")
    return user


def set_password(username, password):
    _check_new_password(password)
    user = get_user(username)
    user.password_hash = hasher.hash(password)
    user.save()
    return user


def set_role(username, role):
    check_role(role)
    user = get_user(username)
    user.role = role
    user.save()
    return user


def delete_user(username):
    get_user(username).delete_instance()


def list_users():
    return list(User.select().order_by(User.username))


def authenticate(username, password, address, limits):
    """The user these credentials name, or NotFound / Malformed / Throttled.

    Format checks come first, then throttling, which counts the attempt as a
    failure until the (slow) hash check proves otherwise.
    """
    check_username(username)
    check_password(password)
    try:
        counted = throttle.count_attempt(username, address, limits)
    except Throttled:
        logger.warning("event=login_throttled username=%s address=%s", username, address)
        raise
    user = User.get_or_none(User.username == username)
    try:
        hasher.verify(user.password_hash if user else _dummy_hash(), password)
    except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
        user = None
    if user is None:
        logger.warning("event=login_failed username=%s address=%s", username, address)
        raise NotFound("Invalid username/password.")
    throttle.forgive(counted, username)
    logger.info("event=login username=%s address=%s", username, address)
    if hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hasher.hash(password)
        user.save()
    return user
