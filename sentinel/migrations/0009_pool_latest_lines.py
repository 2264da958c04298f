"""The latest sample of each metric keeps its lines in Prometheus' text
format, written once when collected rather than at every scrape of
GET /metrics.

Samples written before stay null: a scrape writes their lines from their
rows until the next collection replaces them.
"""

from peewee import TextField


def up(migrator, db):
    migrator.migrate(migrator.add_column("pool_latest_sample", "lines", TextField(null=True)))
