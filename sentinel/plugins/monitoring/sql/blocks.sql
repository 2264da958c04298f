-- Blocks read from outside shared buffers and found in them, per database,
-- and the share found (in %) since the last reset.
SELECT d.datname AS dbname,
       s.blks_read,
       s.blks_hit,
       coalesce(s.blks_hit::float8 * 100 / nullif(s.blks_read + s.blks_hit, 0), 0)
         AS hitmiss_ratio,
       s.stats_reset AS _reset
FROM pg_database d
JOIN pg_stat_database s ON s.datid = d.oid
WHERE d.datallowconn
ORDER BY d.datname
