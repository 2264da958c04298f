"""The dashboard data set: collected by the worker, served by /dashboard."""


def collect_and_store(pg, samples, settings):
    """Take one dashboard sample and keep the newest `dashboard_history`."""
    raise NotImplementedError
