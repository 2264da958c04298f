"""Waiting on a named condition instead of sleeping."""

import time


def wait_for(condition, timeout=15, step=0.05, what="the condition"):
    """The condition's first truthy value, polled every `step` s until `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(step)
