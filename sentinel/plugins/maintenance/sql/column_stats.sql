-- Average width and null fraction of every column pg_stats shows this role,
-- in one schema (or all) or for a few relations, keyed by relation and
-- attribute number, for the bloat estimate. Tables and expression indexes
-- alike: an expression index files its statistics under its own columns.
SELECT c.oid AS relid, a.attnum, s.null_frac, s.avg_width
  FROM pg_stats s
  JOIN pg_namespace n ON n.nspname = s.schemaname
  JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = s.tablename
  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = s.attname
 WHERE NOT s.inherited
   AND (%(schema)s::text IS NULL OR s.schemaname = %(schema)s::text)
   AND (%(names)s::text[] IS NULL OR s.tablename = ANY(%(names)s::text[]))
