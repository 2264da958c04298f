-- The next transaction id, read from a snapshot (which assigns none), with the
-- freeze limits wraparound is measured against.
SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint AS next_xid,   -- pg>=13
       txid_snapshot_xmax(txid_current_snapshot()) AS next_xid,              -- pg<13
       current_setting('autovacuum_freeze_max_age')::bigint AS freeze_max_age,
       current_setting('autovacuum_multixact_freeze_max_age')::bigint AS multixact_freeze_max_age,
       extract(epoch FROM clock_timestamp())::float AS at
