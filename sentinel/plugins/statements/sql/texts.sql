-- The texts of the statements the collector sees for the first time (their
-- queryids), with their role's and database's names.
SELECT s.queryid, s.dbid, s.userid,
       s.toplevel,  -- pg>=14
       true AS toplevel,  -- pg<14
       s.query, d.datname, r.rolname
FROM pg_stat_statements(true) AS s
LEFT JOIN pg_roles AS r ON r.oid = s.userid
LEFT JOIN pg_database AS d ON d.oid = s.dbid
WHERE s.queryid = ANY(%(queryids)s::bigint[])
