-- The lines ALTER SYSTEM wrote (postgresql.auto.conf), the last one of a
-- setting winning as PostgreSQL reads them. Needs superuser or pg_read_all_settings.
SELECT name, setting
FROM pg_file_settings
WHERE sourcefile = current_setting('data_directory') || '/postgresql.auto.conf'
ORDER BY seqno
