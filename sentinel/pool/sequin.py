"""The pool in sequin's dialect (in progress)."""

from flask import Blueprint

blueprint = Blueprint("pool_sequin", __name__)
