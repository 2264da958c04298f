-- Non-template databases: how many, their total size, their transactions so
-- far. The size of a database needs CONNECT on it or pg_read_all_stats: one the
-- role may not measure still counts, but is left out of the total size rather
-- than failing the whole query.
SELECT count(*)::int AS databases,
       pg_size_pretty(coalesce(sum(
         CASE WHEN has_database_privilege(d.oid, 'CONNECT')
                   OR pg_has_role('pg_read_all_stats', 'USAGE')
              THEN pg_database_size(d.oid) END), 0)::bigint) AS total_size,
       to_char(now(), 'HH24:MI') AS time,
       coalesce(sum(s.xact_commit), 0)::bigint AS total_commit,
       coalesce(sum(s.xact_rollback), 0)::bigint AS total_rollback
  FROM pg_database AS d
  LEFT JOIN pg_stat_database AS s ON s.datid = d.oid
 WHERE NOT d.datistemplate
