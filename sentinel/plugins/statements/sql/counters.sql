-- The collector's reading: the key and the counters of every entry, without
-- the texts (reading them costs about ten times the counters; they are read
-- for statements seen for the first time only, by texts.sql). The columns
-- after the key are models.COUNTERS, in that order.
SELECT queryid, dbid, userid,
       toplevel,  -- pg>=14
       true AS toplevel,  -- pg<14
       calls, plans, total_exec_time, total_plan_time, rows,
       shared_blks_hit, shared_blks_read, shared_blks_dirtied, shared_blks_written,
       local_blks_hit, local_blks_read, local_blks_dirtied, local_blks_written,
       temp_blks_read, temp_blks_written,
       blk_read_time, blk_write_time,  -- pg<17
       shared_blk_read_time, shared_blk_write_time,  -- pg>=17
       wal_records, wal_bytes::bigint
FROM pg_stat_statements(false)
WHERE queryid IS NOT NULL
