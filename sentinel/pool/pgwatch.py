"""The pool in pgwatch's dialect (in progress)."""

from flask import Blueprint

blueprint = Blueprint("pool_pgwatch", __name__)
