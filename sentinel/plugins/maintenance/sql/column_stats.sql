-- Average width and null fraction of every column pg_stats shows this role,
-- in one schema (or all), for the bloat estimate. Tables and expression
-- indexes alike: an expression index files its statistics under its name.
SELECT schemaname AS schema, tablename, attname, null_frac, avg_width
  FROM pg_stats
 WHERE NOT inherited
   AND (%(schema)s::text IS NULL OR schemaname = %(schema)s::text)
   AND (%(names)s::text[] IS NULL OR tablename = ANY(%(names)s::text[]))
