"""Samples the worker collects: dashboard data sets and monitoring probe runs."""

from peewee import DateTimeField, Model, TextField


def up(migrator, db):
    class Base(Model):
        class Meta:
            database = db
            legacy_table_names = False

    class DashboardSample(Base):
        collected_at = DateTimeField(index=True)
        data = TextField()  # JSON: one /dashboard data set

    class MonitoringRun(Base):
        collected_at = DateTimeField(index=True)
        data = TextField()  # JSON: one collector output, as /monitoring/history lists

    db.create_tables([DashboardSample, MonitoringRun])
