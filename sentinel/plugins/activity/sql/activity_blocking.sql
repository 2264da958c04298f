-- Backends holding a lock another backend waits for, one row per such lock,
-- longest-running first. Who blocks whom comes from pg_blocking_pids(); the
-- lock is the blocker's granted lock on the object its waiter asks for.
-- Relations are named as in activity_waiting.sql; _asleep_since as in
-- activity.sql.
WITH locks AS (
  SELECT * FROM pg_locks
), edges AS (
  SELECT a.pid AS waiter, unnest(pg_blocking_pids(a.pid)) AS blocker
  FROM pg_stat_activity AS a
  WHERE a.wait_event_type = 'Lock'
    AND a.pid <> pg_backend_pid()
), held AS (
  SELECT DISTINCT h.pid, h.locktype, h.mode, h.database, h.relation
  FROM edges AS e
  JOIN locks AS w ON w.pid = e.waiter AND NOT w.granted
  JOIN locks AS h ON h.pid = e.blocker AND h.granted
   AND h.locktype = w.locktype
   AND h.database IS NOT DISTINCT FROM w.database
   AND h.relation IS NOT DISTINCT FROM w.relation
   AND h.page IS NOT DISTINCT FROM w.page
   AND h.tuple IS NOT DISTINCT FROM w.tuple
   AND h.virtualxid IS NOT DISTINCT FROM w.virtualxid
   AND h.transactionid IS NOT DISTINCT FROM w.transactionid
   AND h.classid IS NOT DISTINCT FROM w.classid
   AND h.objid IS NOT DISTINCT FROM w.objid
   AND h.objsubid IS NOT DISTINCT FROM w.objsubid
)
SELECT h.pid,
       a.datname AS database,
       a.usename AS "user",
       h.mode,
       h.locktype AS type,
       CASE
         WHEN h.relation IS NULL THEN ' '
         WHEN h.database = 0 OR d.datname = current_database() THEN h.relation::regclass::text
       END AS relation,
       h.relation AS relation_oid,
       d.datname AS relation_database,
       round(greatest(extract(epoch FROM now() - coalesce(a.query_start, a.backend_start)), 0)
             ::numeric, 2)::float AS duration,
       a.state,
       a.query,
       CASE WHEN starts_with(a.state, 'idle') THEN extract(epoch FROM a.state_change)::float END
         AS _asleep_since
FROM held AS h
JOIN pg_stat_activity AS a ON a.pid = h.pid
LEFT JOIN pg_database AS d ON d.oid = h.database
ORDER BY duration DESC, h.pid, h.locktype, h.mode
