-- WAL segments in pg_wal, those waiting to be archived, and the WAL position
-- (as bytes since 0/0 for the written rate). A standby has no position of its
-- own to report.
SELECT count(w.name) AS total,
       coalesce(sum(w.size), 0)::float8 AS total_size,
       CASE WHEN NOT pg_is_in_recovery() THEN pg_current_wal_lsn()::text END
         AS current_location,
       (SELECT count(*) FROM pg_ls_archive_statusdir() a WHERE a.name LIKE '%.ready')
         AS archive_ready,
       CASE WHEN NOT pg_is_in_recovery()
            THEN pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint END AS _position
FROM pg_ls_waldir() w
WHERE w.name ~ '^[0-9A-F]{24}$'
