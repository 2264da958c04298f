-- The instance's health at a glance (the home and administration pages), in
-- one round trip. Client backends only, without the one asking. Durations are
-- seconds; counters (transactions, WAL position) become rates in health.py,
-- against the previous reading. data_directory is visible to superusers and
-- pg_read_all_settings members only: NULL for others.
WITH backends AS (
  SELECT pid, state, query_start, xact_start, wait_event_type
    FROM pg_stat_activity
   WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
), longest_query AS (
  SELECT pid, extract(epoch FROM now() - query_start)::float AS seconds
    FROM backends WHERE state = 'active' AND query_start IS NOT NULL
   ORDER BY query_start LIMIT 1
), longest_transaction AS (
  SELECT pid, state, extract(epoch FROM now() - xact_start)::float AS seconds
    FROM backends WHERE xact_start IS NOT NULL
   ORDER BY xact_start LIMIT 1
)
SELECT extract(epoch FROM now())::float AS at,
       version() AS version,
       'PostgreSQL ' || split_part(current_setting('server_version'), ' ', 1) AS version_summary,
       current_setting('port')::int AS port,
       (SELECT setting FROM pg_settings WHERE name = 'data_directory') AS data_directory,
       extract(epoch FROM pg_postmaster_start_time())::float AS started_at,
       pg_is_in_recovery() AS standby,
       -- Sentinel's own connection is one of them too.
       (SELECT count(*)::int + 1 FROM backends) AS connections,
       current_setting('max_connections')::int AS max_connections,
       (SELECT coalesce(sum(xact_commit + xact_rollback), 0)::float
          FROM pg_stat_database) AS transactions,
       -- No block asked for yet: none was missed either.
       (SELECT coalesce(round(sum(blks_hit) * 100 / nullif(sum(blks_hit + blks_read), 0), 2),
                        100)::float
          FROM pg_stat_database) AS hit_ratio,
       (SELECT pid FROM longest_query) AS longest_query_pid,
       (SELECT seconds FROM longest_query) AS longest_query,
       (SELECT pid FROM longest_transaction) AS longest_transaction_pid,
       (SELECT state FROM longest_transaction) AS longest_transaction_state,
       (SELECT seconds FROM longest_transaction) AS longest_transaction,
       (SELECT count(*)::int FROM backends WHERE wait_event_type = 'Lock') AS blocked,
       -- A standby writes no WAL of its own.
       CASE WHEN NOT pg_is_in_recovery()
            THEN (pg_current_wal_lsn() - '0/0'::pg_lsn)::float END AS wal_position,
       ARRAY(SELECT name FROM pg_settings WHERE pending_restart ORDER BY name) AS pending_restart
