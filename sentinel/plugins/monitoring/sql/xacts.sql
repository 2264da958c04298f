-- Committed and rolled back transactions per database since the last reset.
SELECT d.datname AS dbname,
       s.xact_commit AS n_commit,
       s.xact_rollback AS n_rollback,
       s.stats_reset AS _reset
FROM pg_database d
JOIN pg_stat_database s ON s.datid = d.oid
WHERE d.datallowconn
ORDER BY d.datname
