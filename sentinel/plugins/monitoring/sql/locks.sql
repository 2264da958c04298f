-- Locks held (granted) and awaited per database and mode.
SELECT d.datname AS dbname,
       count(l.mode) FILTER (WHERE l.mode = 'AccessShareLock' AND l.granted) AS access_share,
       count(l.mode) FILTER (WHERE l.mode = 'AccessShareLock' AND NOT l.granted)
         AS waiting_access_share,
       count(l.mode) FILTER (WHERE l.mode = 'RowShareLock' AND l.granted) AS row_share,
       count(l.mode) FILTER (WHERE l.mode = 'RowShareLock' AND NOT l.granted)
         AS waiting_row_share,
       count(l.mode) FILTER (WHERE l.mode = 'RowExclusiveLock' AND l.granted) AS row_exclusive,
       count(l.mode) FILTER (WHERE l.mode = 'RowExclusiveLock' AND NOT l.granted)
         AS waiting_row_exclusive,
       count(l.mode) FILTER (WHERE l.mode = 'ShareUpdateExclusiveLock' AND l.granted)
         AS share_update_exclusive,
       count(l.mode) FILTER (WHERE l.mode = 'ShareUpdateExclusiveLock' AND NOT l.granted)
         AS waiting_share_update_exclusive,
       count(l.mode) FILTER (WHERE l.mode = 'ShareLock' AND l.granted) AS share,
       count(l.mode) FILTER (WHERE l.mode = 'ShareLock' AND NOT l.granted) AS waiting_share,
       count(l.mode) FILTER (WHERE l.mode = 'ShareRowExclusiveLock' AND l.granted)
         AS share_row_exclusive,
       count(l.mode) FILTER (WHERE l.mode = 'ShareRowExclusiveLock' AND NOT l.granted)
         AS waiting_share_row_exclusive,
       count(l.mode) FILTER (WHERE l.mode = 'ExclusiveLock' AND l.granted) AS exclusive,
       count(l.mode) FILTER (WHERE l.mode = 'ExclusiveLock' AND NOT l.granted)
         AS waiting_exclusive,
       count(l.mode) FILTER (WHERE l.mode = 'AccessExclusiveLock' AND l.granted)
         AS access_exclusive,
       count(l.mode) FILTER (WHERE l.mode = 'AccessExclusiveLock' AND NOT l.granted)
         AS waiting_access_exclusive,
       count(l.mode) FILTER (WHERE l.mode = 'SIReadLock') AS siread
FROM pg_database d
LEFT JOIN pg_locks l ON l.database = d.oid
WHERE d.datallowconn
GROUP BY d.datname
ORDER BY d.datname
