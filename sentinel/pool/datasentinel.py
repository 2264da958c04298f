"""The pool in datasentinel's dialect (in progress)."""

from flask import Blueprint

blueprint = Blueprint("pool_datasentinel", __name__)
