-- The activity statistics of one table, as pg_stat_all_tables keeps them.
SELECT relid::int AS relid, schemaname, relname,
       seq_scan, seq_tup_read, coalesce(idx_scan, 0) AS idx_scan,
       coalesce(idx_tup_fetch, 0) AS idx_tup_fetch,
       n_tup_ins, n_tup_upd, n_tup_del, n_tup_hot_upd, n_live_tup, n_dead_tup,
       n_mod_since_analyze,
       n_ins_since_vacuum,                                        -- pg>=13
       to_char(last_vacuum AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US+00') AS last_vacuum,
       to_char(last_autovacuum AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US+00') AS last_autovacuum,
       to_char(last_analyze AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US+00') AS last_analyze,
       to_char(last_autoanalyze AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US+00') AS last_autoanalyze,
       vacuum_count, autovacuum_count, analyze_count, autoanalyze_count
  FROM pg_stat_all_tables
 WHERE relid = %(relid)s::oid
