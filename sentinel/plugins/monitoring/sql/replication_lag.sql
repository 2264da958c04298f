-- On a streaming standby: bytes between the primary's last reported WAL end
-- and what this standby has replayed. Nothing on a primary.
SELECT greatest(pg_wal_lsn_diff(r.latest_end_lsn, pg_last_wal_replay_lsn()), 0)::bigint AS lag
FROM pg_stat_wal_receiver r
WHERE pg_is_in_recovery() AND r.latest_end_lsn IS NOT NULL
