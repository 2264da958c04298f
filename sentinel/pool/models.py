"""The one source model every dialect of the pool is a view of.

A source is a remote PostgreSQL (or pgbouncer, pgpool, Patroni) monitored
without an agent on it. Its fields are the union of what the Datasentinel,
pgwatch and Sequin APIs describe, in Sentinel's own names; each dialect maps
its names onto these. Passwords are kept encrypted (sentinel.pool.secrets),
never in clear.
"""

import json
import uuid

import peewee

from ..state import BaseModel, utcnow

KINDS = ("postgres", "postgres-continuous-discovery", "pgbouncer", "pgpool", "patroni")
SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
COLLECTION_RATES = ("low", "high")
# ReplicationSlot.status
ACTIVE = "active"
DISABLED = "disabled"
SLOT_STATUSES = (ACTIVE, DISABLED)


def new_id():
    return str(uuid.uuid4())


class JSONField(peewee.TextField):
    """A JSON value in a text column: the same on SQLite and PostgreSQL state."""

    def db_value(self, value):
        return None if value is None else json.dumps(value, sort_keys=True)

    def python_value(self, value):
        return None if value is None else json.loads(value)


class Source(BaseModel):
    """A monitored instance: how to reach it, what to collect, and how the
    last collection went."""

    id = peewee.CharField(primary_key=True, max_length=36, default=new_id)  # a UUID, stable
    name = peewee.CharField(unique=True, max_length=128)
    host = peewee.CharField(max_length=255)
    port = peewee.IntegerField(default=5432)
    dbname = peewee.CharField(max_length=255, default="postgres")
    user = peewee.CharField(max_length=255)
    encrypted_password = peewee.TextField()  # a Fernet token, also for an empty password
    sslmode = peewee.CharField(max_length=16, default="prefer")  # libpq's own default
    ipv6 = peewee.BooleanField(default=False)
    tags = JSONField(default=dict)  # {str: str}
    group = peewee.CharField(max_length=255, default="default")
    kind = peewee.CharField(max_length=32, default="postgres")
    # PostgreSQL regexes on database names, for continuous discovery; "" is none.
    include_pattern = peewee.TextField(default="")
    exclude_pattern = peewee.TextField(default="")
    # What to collect: a preset by name, or {metric: seconds}; never both.
    preset = peewee.CharField(max_length=128, null=True)
    metrics = JSONField(default=dict)
    standby_preset = peewee.CharField(max_length=128, null=True)
    standby_metrics = JSONField(default=dict)
    only_if_primary = peewee.BooleanField(default=False)
    enabled = peewee.BooleanField(default=True)
    # Datasentinel's collection options, with its defaults.
    collection_rate = peewee.CharField(max_length=8, default="low")
    samples = peewee.BooleanField(default=False)
    lock_monitoring = peewee.BooleanField(default=True)
    lock_monitoring_delay = peewee.IntegerField(default=30)  # s
    table_monitoring = peewee.BooleanField(default=True)
    query_monitoring = peewee.BooleanField(default=True)
    query_optimize = peewee.BooleanField(default=False)
    min_calls = peewee.IntegerField(default=2)
    min_time = peewee.IntegerField(default=1)  # ms
    # pgwatch's HostConfig (Patroni's DCS and the like), kept as given.
    host_config = JSONField(default=dict)
    # The primary of a replica, when the source is one (Sequin's `primary`).
    primary_host = peewee.CharField(max_length=255, null=True)
    primary_port = peewee.IntegerField(null=True)
    primary_dbname = peewee.CharField(max_length=255, null=True)
    primary_user = peewee.CharField(max_length=255, null=True)
    primary_encrypted_password = peewee.TextField(null=True)
    primary_sslmode = peewee.CharField(max_length=16, null=True)
    created_at = peewee.DateTimeField(default=utcnow)
    updated_at = peewee.DateTimeField(default=utcnow)
    # Written by the collection: null until it first tried.
    connected = peewee.BooleanField(null=True)
    last_error = peewee.TextField(null=True)
    last_collected_at = peewee.DateTimeField(null=True)

    class Meta:
        table_name = "pool_source"


class ReplicationSlot(BaseModel):
    """A logical replication slot of a source and the publication it reads."""

    id = peewee.CharField(primary_key=True, max_length=36, default=new_id)
    source = peewee.ForeignKeyField(Source, backref="slots", on_delete="CASCADE")
    publication_name = peewee.CharField(max_length=255)
    slot_name = peewee.CharField(max_length=255)
    status = peewee.CharField(max_length=16, default=ACTIVE)  # ACTIVE | DISABLED
    # Its health, as the collection last saw it on the source: null until then.
    active = peewee.BooleanField(null=True)
    retained_wal_bytes = peewee.BigIntegerField(null=True)
    xmin_age = peewee.BigIntegerField(null=True)  # of the oldest transaction it holds
    checked_at = peewee.DateTimeField(null=True)

    class Meta:
        table_name = "pool_replication_slot"
        indexes = ((("source", "slot_name"), True),)


class DiscoveredDatabase(BaseModel):
    """A database a continuous-discovery source found matching its patterns,
    monitored as `<source name>_<dbname>` until it is dropped."""

    source = peewee.ForeignKeyField(Source, backref="databases", on_delete="CASCADE")
    dbname = peewee.CharField(max_length=255)
    found_at = peewee.DateTimeField(default=utcnow)

    class Meta:
        table_name = "pool_discovered_database"
        indexes = ((("source", "dbname"), True),)


class Sample(BaseModel):
    """One metric's rows from one run on one database of a source.

    `slot` is the epoch second the run was due at: a (source, dbname, metric,
    slot) is written once, whichever worker ran it and however often."""

    id = peewee.BigAutoField()
    source = peewee.ForeignKeyField(Source, on_delete="CASCADE", index=False)
    dbname = peewee.CharField(max_length=255)
    metric = peewee.CharField(max_length=64)
    slot = peewee.BigIntegerField(index=True)  # also what retention deletes by
    collected_at = peewee.DoubleField()  # epoch seconds the query answered
    data = peewee.TextField()  # JSON: the metric's rows, a list of objects

    class Meta:
        table_name = "pool_sample"
        indexes = ((("source", "dbname", "metric", "slot"), True),)


class LatestSample(BaseModel):
    """The last Sample of every (source, dbname, metric), which /metrics serves."""

    source = peewee.ForeignKeyField(Source, on_delete="CASCADE", index=False)
    dbname = peewee.CharField(max_length=255)
    metric = peewee.CharField(max_length=64)
    slot = peewee.BigIntegerField()
    collected_at = peewee.DoubleField()
    data = peewee.TextField()
    # The rows in Prometheus' text format, source labels left to the scrape
    # (sentinel/pool/exposition.py); null when written before 0009.
    lines = peewee.TextField(null=True)

    class Meta:
        table_name = "pool_latest_sample"
        primary_key = peewee.CompositeKey("source", "dbname", "metric")


MODELS = (Source, ReplicationSlot, DiscoveredDatabase, Sample, LatestSample)
