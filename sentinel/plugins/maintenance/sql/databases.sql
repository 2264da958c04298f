-- The databases one can connect to (templates aside), their size, and how
-- far their oldest unfrozen transaction and multixact ids are behind.
SELECT d.datname,
       pg_database_size(d.oid) AS total_bytes,
       age(d.datfrozenxid) AS xid_age,
       mxid_age(d.datminmxid) AS mxid_age
  FROM pg_database d
 WHERE NOT d.datistemplate AND d.datallowconn
 ORDER BY d.datname
