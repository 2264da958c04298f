-- Estimated share (%) of this database's btree index pages that its entries
-- do not need. Each index's pages are compared with the leaf pages its
-- entries would fill at its fillfactor (90 by default), plus the metapage;
-- entry widths come from pg_stats (an expression's statistics are kept under
-- the index's own name). An index with a column of unknown width, or not yet
-- counted (reltuples < 0), counts as not bloated. Sized for 8-byte alignment.
WITH columns AS (
  SELECT x.indexrelid,
         coalesce(s.avg_width, nullif(ia.attlen, -1)) AS width
  FROM pg_index x
  JOIN pg_class i ON i.oid = x.indexrelid
  JOIN pg_class t ON t.oid = x.indrelid
  JOIN pg_namespace n ON n.oid = t.relnamespace
  JOIN pg_attribute ia ON ia.attrelid = x.indexrelid AND ia.attnum > 0
  LEFT JOIN pg_attribute ta ON ta.attrelid = x.indrelid AND ta.attnum = x.indkey[ia.attnum - 1]
  LEFT JOIN pg_stats s ON s.schemaname = n.nspname AND NOT s.inherited
                      AND s.tablename = CASE WHEN ta.attnum IS NULL THEN i.relname
                                             ELSE t.relname END
                      AND s.attname = coalesce(ta.attname, ia.attname)
  WHERE i.relkind = 'i' AND i.relam = (SELECT oid FROM pg_am WHERE amname = 'btree')
    AND x.indisvalid
),
indexes AS (
  SELECT c.relpages AS pages,
         c.reltuples,
         bool_and(k.width IS NOT NULL) AS known,
         -- entry header, the keys, and a line pointer
         8 + 8 * ceil(sum(k.width) / 8.0) + 4 AS entry_bytes,
         (current_setting('block_size')::int - 24 - 16)
           * coalesce((SELECT o.option_value::int FROM pg_options_to_table(c.reloptions) o
                       WHERE o.option_name = 'fillfactor'), 90) / 100.0 AS usable_bytes
  FROM columns k
  JOIN pg_class c ON c.oid = k.indexrelid
  GROUP BY c.oid, c.relpages, c.reltuples, c.reloptions
),
estimates AS (
  SELECT pages,
         CASE WHEN known AND reltuples >= 0
              THEN 1 + ceil(reltuples / greatest(floor(usable_bytes / entry_bytes), 1))
              ELSE pages END AS needed
  FROM indexes
)
SELECT current_database() AS dbname,
       coalesce(100 * sum(greatest(pages - needed, 0)) / nullif(sum(pages), 0), 0)::float8
         AS ratio
FROM estimates
