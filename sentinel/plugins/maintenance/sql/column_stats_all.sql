-- column_stats.sql for a whole schema (or all), run with nested loops off:
-- a statement of its own, as a prepared statement keeps its first plan.
-- Average width and null fraction of every column pg_stats shows this role,
-- for the bloat estimate (an expression index files its own under its name).
SELECT schemaname AS schema, tablename, attname, null_frac, avg_width
  FROM pg_stats
 WHERE NOT inherited
   AND (%(schema)s::text IS NULL OR schemaname = %(schema)s::text)
