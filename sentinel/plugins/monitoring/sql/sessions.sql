-- Backends per database by state. "waiting" is an active backend queued on a
-- heavyweight lock; every other active backend counts as "active".
SELECT d.datname AS dbname,
       count(a.pid) FILTER (WHERE a.state = 'active'
                              AND a.wait_event_type IS DISTINCT FROM 'Lock') AS active,
       count(a.pid) FILTER (WHERE a.state = 'active' AND a.wait_event_type = 'Lock') AS waiting,
       count(a.pid) FILTER (WHERE a.state = 'idle') AS idle,
       count(a.pid) FILTER (WHERE a.state = 'idle in transaction') AS idle_in_xact,
       count(a.pid) FILTER (WHERE a.state = 'idle in transaction (aborted)')
         AS idle_in_xact_aborted,
       count(a.pid) FILTER (WHERE a.state = 'fastpath function call') AS fastpath,
       count(a.pid) FILTER (WHERE a.state = 'disabled') AS disabled,
       count(a.pid) FILTER (WHERE a.query = '<insufficient privilege>') AS no_priv
FROM pg_database d
LEFT JOIN pg_stat_activity a ON a.datid = d.oid
WHERE d.datallowconn
GROUP BY d.datname
ORDER BY d.datname
