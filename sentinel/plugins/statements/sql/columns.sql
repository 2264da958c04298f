-- The columns of the pg_stat_statements view as installed in this database
-- (they follow the extension's version), and which are oids. Fails when the
-- extension is not installed.
SELECT a.attname AS name, a.atttypid = 'oid'::regtype AS is_oid
FROM pg_attribute AS a
WHERE a.attrelid = 'pg_stat_statements'::regclass AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum
