-- Which of the `pids` are client backends Sentinel may signal: any but the
-- backend running this query and the `spared` ones (the state database's
-- connection the request records its notification through, when the state
-- lives in PostgreSQL). Sentinel's other connections are not spared: a pool
-- replaces a connection terminated while idle, and a DBA may stop a runaway
-- Sentinel query as any other.
SELECT pid
FROM pg_stat_activity
WHERE pid = ANY (%(pids)s::int[])
  AND backend_type = 'client backend'
  AND pid <> pg_backend_pid()
  AND pid <> ALL (%(spared)s::int[])
