-- The lines of the configuration files as PostgreSQL reads them now, in the
-- order it applies them: whether each was applied, and what is wrong with it.
SELECT sourcefile AS file,
       sourceline AS line,
       seqno,
       name,
       setting,
       applied,
       error
FROM pg_file_settings
ORDER BY seqno
