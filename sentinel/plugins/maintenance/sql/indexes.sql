-- The indexes of the tables tables.sql lists, analysed or not, with their
-- sizes and usage (pg_stat_all_indexes' figures, read without the view's joins), and for the bloat estimate of a btree: row and page counts,
-- fillfactor and its key columns (attnums of the table, 0 for an expression).
SELECT i.indrelid AS relid,
       i.indexrelid,
       n.nspname AS schema,
       t.relname AS tablename,
       ci.relname AS name,
       pg_get_indexdef(i.indexrelid) AS def,
       am.amname AS type,
       i.indisunique,
       i.indnatts AS number_of_columns,
       ts.spcname AS tablespace,
       pg_relation_size(i.indexrelid) AS total_bytes,
       ci.reltuples::float AS reltuples,
       ci.relpages,
       coalesce((SELECT substring(option FROM '^fillfactor=(\d+)$')::int
                   FROM unnest(ci.reloptions) AS option
                  WHERE option LIKE 'fillfactor=%%'), 90) AS fillfactor,
       pg_stat_get_numscans(i.indexrelid) AS scans,
       pg_stat_get_tuples_returned(i.indexrelid) AS idx_tup_read,
       pg_stat_get_tuples_fetched(i.indexrelid) AS idx_tup_fetch,
       i.indkey::int2[] AS keys
  FROM pg_index i
  JOIN pg_class t ON t.oid = i.indrelid
  JOIN pg_namespace n ON n.oid = t.relnamespace
  JOIN pg_class ci ON ci.oid = i.indexrelid
  JOIN pg_am am ON am.oid = ci.relam
  LEFT JOIN pg_tablespace ts ON ts.oid = ci.reltablespace
 WHERE t.relkind IN ('r', 'm')
   AND (%(schema_oid)s::oid IS NULL OR t.relnamespace = %(schema_oid)s::oid)
   AND (%(table)s::text IS NULL OR t.relname = %(table)s::text)
   AND n.nspname <> 'pg_toast' AND n.nspname NOT LIKE 'pg_temp_%%'
