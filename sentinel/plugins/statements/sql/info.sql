-- When pg_stat_statements was last reset as a whole (PostgreSQL 14 and later;
-- before, a reset is only seen in counters going down).
SELECT stats_reset FROM pg_stat_statements_info  -- pg>=14
SELECT NULL::timestamptz AS stats_reset  -- pg<14
