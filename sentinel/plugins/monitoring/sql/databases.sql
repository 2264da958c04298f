-- The databases the per-database probes visit: those accepting connections.
SELECT datname AS dbname
FROM pg_database
WHERE datallowconn
ORDER BY datname
