-- The Statements page's "since the last reset": the counters as they are now.
SELECT s.queryid, s.dbid, s.userid,
       s.toplevel,  -- pg>=14
       true AS toplevel,  -- pg<14
       d.datname, r.rolname, s.query,
       s.calls, s.total_exec_time, s.rows, s.shared_blks_hit, s.shared_blks_read,
       s.temp_blks_written
FROM pg_stat_statements AS s
LEFT JOIN pg_roles AS r ON r.oid = s.userid
LEFT JOIN pg_database AS d ON d.oid = s.dbid
