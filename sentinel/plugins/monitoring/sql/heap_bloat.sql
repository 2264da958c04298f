-- Estimated share (%) of this database's table pages that its live rows do
-- not need. Each table's pages (heap and TOAST) are compared with the pages
-- its rows would fill at its fillfactor, the row width coming from pg_stats.
-- A table without statistics (never analysed) counts as not bloated. Rows are
-- sized for a 64-bit server (8-byte alignment); a TOAST page holds 4 chunks.
WITH widths AS (
  SELECT a.attrelid AS relid,
         count(*) AS natts,
         count(s.attname) AS analysed,
         coalesce(bool_or(s.null_frac > 0), false) AS nullable,
         sum((1 - coalesce(s.null_frac, 0)) * coalesce(s.avg_width, 0)) AS data_width
  FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
  LEFT JOIN pg_stats s ON s.schemaname = n.nspname AND s.tablename = c.relname
                      AND s.attname = a.attname AND NOT s.inherited
  WHERE c.relkind IN ('r', 'm')
  GROUP BY a.attrelid
),
tables AS (
  SELECT c.relpages + coalesce(t.relpages, 0) AS pages,
         c.reltuples,
         coalesce(t.reltuples, 0) AS toast_tuples,
         w.analysed > 0 AS known,
         -- tuple header (with its null bitmap), the data, and a line pointer
         8 * ceil((23 + CASE WHEN w.nullable THEN (w.natts + 7) / 8 ELSE 0 END) / 8.0)
           + 8 * ceil(w.data_width / 8) + 4 AS row_bytes,
         (current_setting('block_size')::int - 24)
           * coalesce((SELECT o.option_value::int FROM pg_options_to_table(c.reloptions) o
                       WHERE o.option_name = 'fillfactor'), 100) / 100.0 AS usable_bytes
  FROM pg_class c
  JOIN widths w ON w.relid = c.oid
  LEFT JOIN pg_class t ON t.oid = c.reltoastrelid
),
estimates AS (
  SELECT pages,
         CASE WHEN known AND reltuples >= 0
              THEN ceil(reltuples / greatest(floor(usable_bytes / row_bytes), 1))
                   + ceil(toast_tuples / 4)
              ELSE pages END AS needed
  FROM tables
)
SELECT current_database() AS dbname,
       coalesce(100 * sum(greatest(pages - needed, 0)) / nullif(sum(pages), 0), 0)::float8
         AS ratio
FROM estimates
