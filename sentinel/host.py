"""Facts about the host Sentinel runs on, read with psutil."""

import functools
import platform

import psutil


@functools.cache
def static_facts():
    """What does not change while the process runs."""
    return {
        "memory_size": psutil.virtual_memory().total,
        "cpu": psutil.cpu_count() or 1,
        "os_version": platform.release(),
    }
