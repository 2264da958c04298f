-- Client backends, longest-running first, leaving out only this query's own
-- backend: Sentinel's other connections are listed like any client's, under
-- the application_name they give (which any client may give too). duration
-- runs from the start of the backend's last query or, before its first query,
-- from its connection. _asleep_since (epoch seconds) is when a backend waiting
-- for its client began to wait: its process has used no CPU nor I/O since.
SELECT a.pid,
       a.datname AS database,
       a.client_addr AS client,
       round(greatest(extract(epoch FROM now() - coalesce(a.query_start, a.backend_start)), 0)
             ::numeric, 2)::float AS duration,
       CASE WHEN a.wait_event_type = 'Lock' THEN 'Y' ELSE 'N' END AS wait,
       a.usename AS "user",
       a.state,
       a.query,
       a.application_name,
       CASE WHEN starts_with(a.state, 'idle') THEN extract(epoch FROM a.state_change)::float END
         AS _asleep_since
FROM pg_stat_activity AS a
WHERE a.backend_type = 'client backend'
  AND a.pid <> pg_backend_pid()
ORDER BY duration DESC, a.pid
