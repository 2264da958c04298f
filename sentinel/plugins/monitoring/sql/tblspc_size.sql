-- On-disk size of every tablespace, in bytes.
SELECT spcname, pg_tablespace_size(oid) AS size
FROM pg_tablespace
ORDER BY spcname
