-- The tables of a schema (all schemas when schema_oid is NULL; one table when
-- `table` is set), with their sizes and what the bloat estimate needs: row
-- and page counts, fillfactor and the numbers of its columns. One pass.
SELECT c.oid AS relid,
       n.nspname AS schema,
       c.relname AS name,
       c.reltuples::float AS reltuples,
       c.relpages,
       coalesce((SELECT substring(option FROM '^fillfactor=(\d+)$')::int
                   FROM unnest(c.reloptions) AS option
                  WHERE option LIKE 'fillfactor=%%'), 100) AS fillfactor,
       columns.numbers AS column_numbers,
       pg_relation_size(c.oid) + pg_relation_size(c.oid, 'fsm') + pg_relation_size(c.oid, 'vm')
         AS table_bytes,
       -- The TOAST table's own pages, not its index: opening that index too
       -- for each of 10,000 tables tripled the cost of this column.
       CASE WHEN c.reltoastrelid <> 0 THEN pg_relation_size(c.reltoastrelid) ELSE 0 END
         AS toast_bytes
  FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
  CROSS JOIN LATERAL (
    SELECT array_agg(a.attnum) AS numbers
      FROM pg_attribute a
     WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
  ) AS columns
 WHERE c.relkind IN ('r', 'm')
   AND (%(schema_oid)s::oid IS NULL OR c.relnamespace = %(schema_oid)s::oid)
   AND (%(table)s::text IS NULL OR c.relname = %(table)s::text)
   AND n.nspname <> 'pg_toast' AND n.nspname NOT LIKE 'pg_temp_%%'
