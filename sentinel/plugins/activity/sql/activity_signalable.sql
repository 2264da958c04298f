-- Which of the `pids` are client backends Sentinel may signal: neither this
-- query's own backend nor one of Sentinel's connections (application_name in `own`).
SELECT pid
FROM pg_stat_activity
WHERE pid = ANY (%(pids)s::int[])
  AND backend_type = 'client backend'
  AND pid <> pg_backend_pid()
  AND application_name <> ALL (%(own)s::text[])
