-- Bytes written to temporary files per database since the last reset.
SELECT d.datname AS dbname,
       s.temp_bytes AS size,
       s.stats_reset AS _reset
FROM pg_database d
JOIN pg_stat_database s ON s.datid = d.oid
WHERE d.datallowconn
ORDER BY d.datname
