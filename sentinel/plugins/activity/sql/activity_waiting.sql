-- Backends waiting for a lock, one row per awaited lock, longest-running first.
-- A relation of this database (or a shared catalog) is named here; for one of
-- another database `relation` is NULL and relation_oid / relation_database let
-- the caller name it there. _asleep_since (epoch seconds) is when the backend
-- began to wait for the lock (PostgreSQL 14 and later tell): its process has
-- used no CPU nor I/O since.
SELECT l.pid,
       a.datname AS database,
       a.usename AS "user",
       l.mode,
       l.locktype AS type,
       CASE
         WHEN l.relation IS NULL THEN ' '
         WHEN l.database = 0 OR d.datname = current_database() THEN l.relation::regclass::text
       END AS relation,
       l.relation AS relation_oid,
       d.datname AS relation_database,
       round(greatest(extract(epoch FROM now() - coalesce(a.query_start, a.backend_start)), 0)
             ::numeric, 2)::float AS duration,
       a.state,
       a.query,
       extract(epoch FROM l.waitstart)::float AS _asleep_since  -- pg>=14
       NULL::float AS _asleep_since  -- pg<14
FROM pg_locks AS l
JOIN pg_stat_activity AS a ON a.pid = l.pid
LEFT JOIN pg_database AS d ON d.oid = l.database
WHERE NOT l.granted
  AND l.pid <> pg_backend_pid()
ORDER BY duration DESC, l.pid
