-- What a running VACUUM, ANALYZE, REINDEX or VACUUM FULL of one backend has
-- done so far, in the units its progress view counts (blocks or tuples).
SELECT 'vacuum' AS command, phase,
       heap_blks_scanned AS done, heap_blks_total AS total, 'blocks' AS unit
  FROM pg_stat_progress_vacuum WHERE pid = %(pid)s
UNION ALL
SELECT 'analyze', phase, sample_blks_scanned, sample_blks_total, 'blocks'
  FROM pg_stat_progress_analyze WHERE pid = %(pid)s
UNION ALL
SELECT command, phase,
       CASE WHEN blocks_total > 0 THEN blocks_done ELSE tuples_done END,
       CASE WHEN blocks_total > 0 THEN blocks_total ELSE tuples_total END,
       CASE WHEN blocks_total > 0 THEN 'blocks' ELSE 'tuples' END
  FROM pg_stat_progress_create_index WHERE pid = %(pid)s
UNION ALL
SELECT command, phase,
       CASE WHEN heap_blks_total > 0 THEN heap_blks_scanned ELSE heap_tuples_scanned END,
       CASE WHEN heap_blks_total > 0 THEN heap_blks_total ELSE NULL END,
       CASE WHEN heap_blks_total > 0 THEN 'blocks' ELSE 'tuples' END
  FROM pg_stat_progress_cluster WHERE pid = %(pid)s
