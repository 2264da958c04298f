-- Backends holding (or waiting for) a lock on a relation now: who would hold
-- a maintenance job up, with how long their transaction has been open.
SELECT l.pid, l.mode, l.granted, a.usename AS "user", a.state,
       extract(epoch FROM now() - a.xact_start)::float AS xact_age,
       a.query
  FROM pg_locks l
  JOIN pg_stat_activity a ON a.pid = l.pid
 WHERE l.locktype = 'relation'
   AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
   AND l.relation = %(relid)s::oid
   AND l.pid <> pg_backend_pid()
 ORDER BY a.xact_start NULLS LAST
