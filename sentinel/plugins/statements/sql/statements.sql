-- GET /statements: every entry of pg_stat_statements, all databases, with
-- its role's and database's names, one JSON text a row (PostgreSQL writes
-- the JSON: the route streams it as it comes). {columns} are the view's own,
-- as installed (columns.sql), its oids cast to numbers as the agent writes
-- them. Beside them, the times under the names PostgreSQL 13 changed, so
-- that a client of either naming reads its own.
SELECT row_to_json(entry)::text AS entry
FROM (
  SELECT r.rolname, d.datname, {columns}
    , s.total_exec_time AS total_time  -- pg>=13
    , s.min_exec_time AS min_time  -- pg>=13
    , s.max_exec_time AS max_time  -- pg>=13
    , s.mean_exec_time AS mean_time  -- pg>=13
    , s.stddev_exec_time AS stddev_time  -- pg>=13
    , s.total_time AS total_exec_time  -- pg<13
    , s.min_time AS min_exec_time  -- pg<13
    , s.max_time AS max_exec_time  -- pg<13
    , s.mean_time AS mean_exec_time  -- pg<13
    , s.stddev_time AS stddev_exec_time  -- pg<13
    , s.shared_blk_read_time AS blk_read_time  -- pg>=17
    , s.shared_blk_write_time AS blk_write_time  -- pg>=17
  FROM pg_stat_statements AS s
  LEFT JOIN pg_roles AS r ON r.oid = s.userid
  LEFT JOIN pg_database AS d ON d.oid = s.dbid
) AS entry
