-- What /discover reports of the instance. data_directory is visible to
-- superusers and pg_read_all_settings members only: NULL for others.
SELECT version() AS pg_version,
       'PostgreSQL ' || split_part(current_setting('server_version'), ' ', 1) AS pg_version_summary,
       current_setting('port')::int AS pg_port,
       current_setting('block_size')::int AS pg_block_size,
       (SELECT setting FROM pg_settings WHERE name = 'data_directory') AS pg_data
