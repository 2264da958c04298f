-- The cheap part of a dashboard sample: statistics counters and settings, no
-- file system walk. The same on PostgreSQL 13 to 17: pg_stat_bgwriter kept
-- buffers_alloc in 17 (only its checkpoint and backend columns moved away).
SELECT (SELECT buffers_alloc FROM pg_stat_bgwriter) AS buffers,
       -- No block asked for yet: none was missed either.
       (SELECT coalesce(round(sum(blks_hit) * 100 / nullif(sum(blks_hit + blks_read), 0), 2),
                        100)::float
          FROM pg_stat_database) AS hitratio,
       -- The function behind pg_stat_activity, without the view's joins to
       -- pg_database and pg_authid for names a count does not need; Sentinel's
       -- own query is not activity of the instance.
       (SELECT count(*)::int FROM pg_stat_get_activity(NULL)
         WHERE state <> 'idle' AND pid <> pg_backend_pid()) AS active_backends,
       current_setting('max_connections')::int AS max_connections,
       extract(epoch FROM now() - pg_postmaster_start_time())::int AS pg_uptime,
       version() AS pg_version,
       -- Readable by superusers and pg_read_all_settings members only: NULL
       -- for others, where current_setting() would fail the whole query.
       CASE WHEN pg_has_role('pg_read_all_settings', 'USAGE')
            THEN current_setting('data_directory') END AS pg_data,
       current_setting('port') AS pg_port
