"""Monitoring probes: run on request and periodically by the worker."""


def collect_and_store(pg, samples, settings):
    """Run every probe once and keep the run for `monitoring_retention` seconds."""
    raise NotImplementedError
