-- Every backend that waits for a lock or holds one others wait for: who blocks
-- it (blocked_by, from pg_blocking_pids()) and the granted locks it holds that
-- others wait for (locks, a JSON list; relations named as in
-- activity_waiting.sql).
WITH locks AS (
  SELECT * FROM pg_locks
), edges AS (
  SELECT a.pid AS waiter, unnest(pg_blocking_pids(a.pid)) AS blocker
  FROM pg_stat_activity AS a
  WHERE a.wait_event_type = 'Lock'
    AND a.pid <> pg_backend_pid()
), blocked_by AS (
  SELECT waiter AS pid, array_agg(DISTINCT blocker) AS pids
  FROM edges
  GROUP BY waiter
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
), held_by AS (
  SELECT h.pid,
         json_agg(json_build_object(
           'relation', CASE
                         WHEN h.relation IS NULL THEN ' '
                         WHEN h.database = 0 OR d.datname = current_database()
                           THEN h.relation::regclass::text
                       END,
           'type', h.locktype,
           'mode', h.mode,
           'relation_oid', h.relation,
           'relation_database', d.datname
         ) ORDER BY h.locktype, h.relation, h.mode) AS locks
  FROM held AS h
  LEFT JOIN pg_database AS d ON d.oid = h.database
  GROUP BY h.pid
), nodes AS (
  SELECT waiter AS pid FROM edges
  UNION
  SELECT blocker FROM edges
)
SELECT a.pid,
       a.datname AS database,
       a.usename AS "user",
       a.state,
       a.query,
       round(greatest(extract(epoch FROM now() - coalesce(a.query_start, a.backend_start)), 0)
             ::numeric, 2)::float AS duration,
       CASE WHEN a.xact_start IS NOT NULL  -- greatest() would turn NULL into 0
         THEN round(greatest(extract(epoch FROM now() - a.xact_start), 0)::numeric, 2)::float
       END AS xact_age,
       a.wait_event_type,
       a.wait_event,
       coalesce(b.pids, '{}') AS blocked_by,
       coalesce(l.locks, '[]') AS locks
FROM nodes AS n
JOIN pg_stat_activity AS a ON a.pid = n.pid
LEFT JOIN blocked_by AS b ON b.pid = n.pid
LEFT JOIN held_by AS l ON l.pid = n.pid
