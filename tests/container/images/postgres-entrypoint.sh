#!/bin/sh
# What the official image does on an empty data volume, in short: initdb, the user and database
# from POSTGRES_*, the init scripts; then the server, listening on every address with passwords.
set -eu
user=${POSTGRES_USER:-postgres}
db=${POSTGRES_DB:-$user}
chown -R postgres:postgres "$PGDATA" /var/run/postgresql
as_pg() { runuser -u postgres -- "$@"; }
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    pwfile=$(mktemp)
    printf '%s\n' "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD is required}" > "$pwfile"
    chown postgres "$pwfile"
    as_pg initdb -D "$PGDATA" -U "$user" --pwfile="$pwfile" --auth-local=trust \
        --auth-host=scram-sha-256 -E UTF8 >/dev/null
    rm -f "$pwfile"
    echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
    as_pg pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
    [ "$db" = postgres ] || as_pg psql -v ON_ERROR_STOP=1 -U "$user" -d postgres -qc "CREATE DATABASE \"$db\""
    for f in /docker-entrypoint-initdb.d/*.sql; do
        [ -e "$f" ] && as_pg psql -v ON_ERROR_STOP=1 -U "$user" -d "$db" -qf "$f"
    done
    as_pg pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
fi
exec setpriv --reuid=postgres --regid=postgres --init-groups postgres -D "$PGDATA" -c listen_addresses='*'
