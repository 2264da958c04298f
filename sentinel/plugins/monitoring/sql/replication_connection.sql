-- On a standby: the upstream it is configured to stream from, and whether it
-- streams now (1) or not (0). Nothing on a primary.
SELECT coalesce(r.sender_host,
                substring(c.setting FROM 'host=''?([^'' ]+)'), '') AS upstream,
       (r.status IS NOT DISTINCT FROM 'streaming')::int AS connected
FROM (SELECT (SELECT setting FROM pg_settings WHERE name = 'primary_conninfo') AS setting) c
LEFT JOIN pg_stat_wal_receiver r ON true
WHERE pg_is_in_recovery()
