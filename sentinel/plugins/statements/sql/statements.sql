-- GET /statements: every entry of pg_stat_statements, all databases, with
-- its role's and database's names, one JSON text a row (PostgreSQL writes
-- the JSON: the route streams it as it comes). Beside the columns of the
-- running version, the times under the names PostgreSQL 13 changed, so that
-- a client of either naming reads its own. Oids are numbers, as the agent
-- writes them (JSON of an oid is a string).
SELECT (
  to_jsonb(s) || jsonb_build_object(
    'rolname', r.rolname, 'datname', d.datname,
    'userid', s.userid::bigint, 'dbid', s.dbid::bigint
    , 'total_time', s.total_exec_time, 'min_time', s.min_exec_time  -- pg>=13
    , 'max_time', s.max_exec_time, 'mean_time', s.mean_exec_time  -- pg>=13
    , 'stddev_time', s.stddev_exec_time  -- pg>=13
    , 'total_exec_time', s.total_time, 'min_exec_time', s.min_time  -- pg<13
    , 'max_exec_time', s.max_time, 'mean_exec_time', s.mean_time  -- pg<13
    , 'stddev_exec_time', s.stddev_time  -- pg<13
    , 'blk_read_time', s.shared_blk_read_time  -- pg>=17
    , 'blk_write_time', s.shared_blk_write_time  -- pg>=17
  )
)::text AS entry
FROM pg_stat_statements AS s
LEFT JOIN pg_roles AS r ON r.oid = s.userid
LEFT JOIN pg_database AS d ON d.oid = s.dbid
