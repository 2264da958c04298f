-- Every setting as the agent answers it: values as text, enumvals as the
-- array's text ("{a,b}"), desc the short and extra descriptions, setting_raw
-- the value with its unit; and where its value comes from.
-- Sentinel's own connection sets a few settings (statement_timeout,
-- lock_timeout, application_name: source "client"); for those, the line of
-- the configuration files that sets them for the server, when one does and
-- this role may read the files (a superuser), read once for them all.
WITH files AS MATERIALIZED (
    SELECT DISTINCT ON (name) name, setting, sourcefile, sourceline
    FROM pg_file_settings
    WHERE applied AND current_setting('is_superuser') = 'on'
    ORDER BY name, seqno DESC
)
SELECT s.category,
       s.context,
       s.enumvals::text AS enumvals,
       s.max_val,
       s.vartype,
       s.boot_val,
       s.reset_val,
       s.unit,
       s.short_desc || ' ' || coalesce(s.extra_desc, '') AS "desc",
       s.name,
       s.min_val,
       s.setting,
       current_setting(s.name) AS setting_raw,
       s.pending_restart,
       s.source,
       s.sourcefile,
       s.sourceline,
       CASE WHEN s.source = 'client' THEN
           (SELECT array[f.setting, f.sourcefile, f.sourceline::text] FROM files f WHERE f.name = s.name)
       END AS server_line
FROM pg_settings s
ORDER BY s.category, s.name
