-- Checkpointer and background writer activity under the names of
-- pg_stat_bgwriter before PostgreSQL 17. From 17 the checkpointer has its own
-- view, and the buffers written by backends are in pg_stat_io.
SELECT checkpoints_timed, checkpoints_req,                                  -- pg<17
       checkpoint_write_time, checkpoint_sync_time, buffers_checkpoint,     -- pg<17
       buffers_clean, maxwritten_clean, buffers_backend,                    -- pg<17
       buffers_backend_fsync, buffers_alloc, stats_reset,                   -- pg<17
       stats_reset AS _reset                                                -- pg<17
FROM pg_stat_bgwriter                                                       -- pg<17
SELECT c.num_timed AS checkpoints_timed,                                    -- pg>=17
       c.num_requested AS checkpoints_req,                                  -- pg>=17
       c.write_time AS checkpoint_write_time,                               -- pg>=17
       c.sync_time AS checkpoint_sync_time,                                 -- pg>=17
       c.buffers_written AS buffers_checkpoint,                             -- pg>=17
       b.buffers_clean, b.maxwritten_clean,                                 -- pg>=17
       io.writes AS buffers_backend, io.fsyncs AS buffers_backend_fsync,    -- pg>=17
       b.buffers_alloc, b.stats_reset,                                      -- pg>=17
       greatest(b.stats_reset, c.stats_reset, io.stats_reset) AS _reset     -- pg>=17
FROM pg_stat_bgwriter b, pg_stat_checkpointer c,                            -- pg>=17
     (SELECT coalesce(sum(writes), 0)::bigint AS writes,                    -- pg>=17
             coalesce(sum(fsyncs), 0)::bigint AS fsyncs,                    -- pg>=17
             max(stats_reset) AS stats_reset                                -- pg>=17
      FROM pg_stat_io                                                       -- pg>=17
      WHERE object = 'relation'                                             -- pg>=17
        AND backend_type NOT IN ('checkpointer', 'background writer')) io  -- pg>=17
