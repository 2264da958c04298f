"""Logging set-up: key=value lines on stderr, for journald."""

import logging
import sys

FORMAT = "%(asctime)s level=%(levelname)s logger=%(name)s %(message)s"


def configure(level):
    root = logging.getLogger()
    root.setLevel(level)
    if not any(getattr(handler, "sentinel", False) for handler in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(FORMAT))
        handler.sentinel = True
        root.addHandler(handler)
