"""What each probe's records and a collector run look like, as JSON Schema.

Every record has `datetime`; SQL probes add the server's `port`; counters
turned into increases come with `measure_interval` (seconds since the
previous sample).
"""

from ...contract import BOOLEAN, INTEGER, NUMBER, STRING, array, nullable, record
from .probes import LOCK_MODES

STAMPED = {"datetime": STRING}
PORT = {"port": INTEGER}
INTERVAL = {"measure_interval": NUMBER}


def _counts(*names):
    return {name: INTEGER for name in names}


PROBE_RECORDS = {
    "sessions": record(
        dbname=STRING,
        **_counts(
            "active",
            "waiting",
            "idle",
            "idle_in_xact",
            "idle_in_xact_aborted",
            "fastpath",
            "disabled",
            "no_priv",
        ),
        **PORT,
        **STAMPED,
    ),
    "xacts": record(
        dbname=STRING,
        n_commit=INTEGER,
        n_rollback=INTEGER,
        **PORT,
        **STAMPED,
        optional=INTERVAL,
    ),
    "locks": record(
        dbname=STRING,
        **_counts(*LOCK_MODES, *(f"waiting_{mode}" for mode in LOCK_MODES), "siread"),
        **PORT,
        **STAMPED,
    ),
    "blocks": record(
        dbname=STRING,
        blks_read=INTEGER,
        blks_hit=INTEGER,
        hitmiss_ratio=nullable(NUMBER),
        **PORT,
        **STAMPED,
        optional=INTERVAL,
    ),
    "bgwriter": record(
        **_counts(
            "checkpoints_timed",
            "checkpoints_req",
            "buffers_checkpoint",
            "buffers_clean",
            "maxwritten_clean",
            "buffers_backend",
            "buffers_backend_fsync",
            "buffers_alloc",
        ),
        checkpoint_write_time=NUMBER,
        checkpoint_sync_time=NUMBER,
        stats_reset=nullable(STRING),
        **PORT,
        **STAMPED,
        optional=INTERVAL,
    ),
    "db_size": record(dbname=STRING, size=INTEGER, **PORT, **STAMPED),
    "tblspc_size": record(spcname=STRING, size=INTEGER, **PORT, **STAMPED),
    "filesystems_size": record(
        mount_point=STRING, device=STRING, total=INTEGER, used=INTEGER, **STAMPED
    ),
    "cpu": record(
        **{f"time_{state}": NUMBER for state in ("user", "system", "idle", "iowait", "steal")},
        **INTERVAL,
        cpu={"const": "global"},
        **STAMPED,
    ),
    "process": record(
        procs_running=INTEGER,
        procs_blocked=INTEGER,
        procs_total=STRING,
        context_switches=INTEGER,
        forks=INTEGER,
        **INTERVAL,
        **STAMPED,
    ),
    "memory": record(
        **_counts(
            "mem_total",
            "mem_used",
            "mem_free",
            "mem_buffers",
            "mem_cached",
            "swap_total",
            "swap_used",
        ),
        **STAMPED,
    ),
    "loadavg": record(load1=STRING, load5=STRING, load15=STRING, **STAMPED),
    "wal_files": record(
        total=INTEGER,
        total_size=NUMBER,
        current_location=STRING,
        archive_ready=INTEGER,
        written_size=INTEGER,
        **INTERVAL,
        **PORT,
        **STAMPED,
    ),
    "replication_lag": record(lag=INTEGER, **STAMPED),
    "temp_files_size_delta": record(dbname=STRING, size=INTEGER, **INTERVAL, **PORT, **STAMPED),
    "replication_connection": record(upstream=STRING, connected=INTEGER, **STAMPED),
    "heap_bloat": record(dbname=STRING, ratio=NUMBER, **PORT, **STAMPED),
    "btree_bloat": record(dbname=STRING, ratio=NUMBER, **PORT, **STAMPED),
}

INSTANCE = record(
    hostname=STRING,
    instance=STRING,
    local_name=STRING,
    available=BOOLEAN,
    host=STRING,
    port=INTEGER,
    user=STRING,
    database=STRING,
    optional={
        "version_num": INTEGER,
        "version": STRING,
        "data_directory": nullable(STRING),
        "standby": BOOLEAN,
        "max_connections": STRING,
        "tablespaces": array(
            record(
                spcname=STRING,
                path=nullable(STRING),
                mount_point=nullable(STRING),
                size=nullable(INTEGER),
            )
        ),
        "dbnames": array(record(dbname=STRING, encoding=STRING, size=nullable(INTEGER))),
        "sysuser": nullable(STRING),
    },
)
HOSTINFO = record(
    hostname=STRING,
    os=STRING,
    os_version=STRING,
    cpu_arch=STRING,
    cpus=array({"type": "object", "additionalProperties": STRING}),
    cpu_count=INTEGER,
    memory_size=INTEGER,
    ip_addresses=array(STRING),
    filesystems=array(record(mount_point=STRING, device=STRING, total=INTEGER, used=INTEGER)),
    os_flavor=STRING,
)
RUN = record(
    datetime=STRING,
    hostinfo=HOSTINFO,
    instances=array(INSTANCE),
    data={
        "type": "object",
        "properties": {name: array(schema) for name, schema in PROBE_RECORDS.items()},
    },
    version=STRING,
)
