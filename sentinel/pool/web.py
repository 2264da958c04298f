"""The pool's pages (in progress)."""

from flask import Blueprint

blueprint = Blueprint("pool_web", __name__)
