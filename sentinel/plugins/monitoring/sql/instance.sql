-- What a collector run reports of the instance beside its probes. Sizes are
-- left to the db_size and tblspc_size probes of the same run.
SELECT current_setting('server_version_num')::int AS version_num,
       current_setting('server_version') AS version,
       (SELECT setting FROM pg_settings WHERE name = 'data_directory') AS data_directory,
       pg_is_in_recovery() AS standby,
       current_setting('max_connections') AS max_connections,
       (SELECT json_agg(json_build_object('dbname', datname,
                                          'encoding', pg_encoding_to_char(encoding))
                        ORDER BY datname)
        FROM pg_database WHERE datallowconn) AS dbnames,
       (SELECT json_agg(json_build_object('spcname', spcname,
                                          'location', pg_tablespace_location(oid))
                        ORDER BY spcname)
        FROM pg_tablespace) AS tablespaces
