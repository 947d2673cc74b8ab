#!/bin/bash
# Entry point of deploy/offline/postgres.Dockerfile. With `postgres ARGS`
# (the default command): on first start, initdb into $PGDATA with superuser
# $POSTGRES_USER (postgres) and password $POSTGRES_PASSWORD (required),
# scram-sha-256 for TCP from anywhere (the socket trusts local users), and
# database $POSTGRES_DB; then exec postgres ARGS. Any other command runs as
# given.
set -euo pipefail
if [ "${1:-}" != postgres ]; then
    exec "$@"
fi
shift
: "${PGDATA:?}"
user=${POSTGRES_USER:-postgres}
db=${POSTGRES_DB:-$user}
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    [ -n "${POSTGRES_PASSWORD:-}" ] || {
        echo "postgres-entrypoint: POSTGRES_PASSWORD is not set" >&2
        exit 1
    }
    pwfile=$(mktemp)
    printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
    initdb -D "$PGDATA" -U "$user" --pwfile="$pwfile" -E UTF8 --no-locale \
        --auth-local=trust --auth-host=scram-sha-256
    rm -f "$pwfile"
    {
        echo "host all all all scram-sha-256"
        echo "host replication all all scram-sha-256"
    } >>"$PGDATA/pg_hba.conf"
    echo "listen_addresses = '*'" >>"$PGDATA/postgresql.conf"
    if [ "$db" != postgres ]; then
        # a server on the socket only, so nothing connects before it is done
        pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w -s start
        psql -X -q -v ON_ERROR_STOP=1 -U "$user" -d postgres \
            -c "CREATE DATABASE \"$db\""
        pg_ctl -D "$PGDATA" -m fast -w -s stop
    fi
    echo "postgres-entrypoint: cluster initialised in $PGDATA (database $db, user $user)"
fi
exec postgres -D "$PGDATA" "$@"
