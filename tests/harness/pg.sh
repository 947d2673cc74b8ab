#!/bin/bash
# A throwaway PostgreSQL cluster on 127.0.0.1, for tests and `make run`.
#
#   pg.sh start   DIR [name=value ...]   initdb on first use, start, print env
#   pg.sh stop    DIR [fast|immediate|smart]          (default fast)
#   pg.sh restart DIR [fast|immediate]                (default fast)
#   pg.sh status  DIR                    exit 0 when running
#   pg.sh env     DIR                    print DIR/env
#
# First start: initdb (UTF8, superuser "postgres", trust auth) into DIR/data,
# a free loopback port (kept in DIR/port and reused by every later start),
# wal_level=logical, replication allowed from 127.0.0.1, database "orders".
# Settings live in DIR/data/harness.conf, rewritten at every `start` from the
# defaults below plus the name=value arguments (a later start without them
# drops them again; `restart` keeps whatever is there).
# Writes DIR/env and prints it:
#   PGPORT=<port>
#   DATABASE_URL=postgresql://postgres@127.0.0.1:<port>/orders
# Server log: DIR/postgres.log.
# initdb refuses to run as root, so as root the server runs as the OS user
# "postgres" (from Debian's postgresql package) and DIR is chowned to it;
# otherwise it runs as the calling user.
# Version: PG_VERSION=15|16|17|18 (default 15, Debian's; 16-18 are the builds
# of tests/harness/pgdist.sh), PG_BINDIR=DIR for any other server. The first
# start records the bin/ directory in DIR/bindir; every later command uses
# that one, and refuses a PG_VERSION other than the cluster's.
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -euo pipefail
PROG=pg.sh
. "$(dirname "$0")/common.sh"

usage() {
    sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

[ $# -ge 2 ] || usage
cmd=$1
dir=$2
shift 2
case $cmd in start | stop | restart | status | env) ;; *) usage ;; esac

if [ "$cmd" != start ] && [ ! -d "$dir" ]; then
    case $cmd in
    stop) exit 0 ;;
    *) die "$dir does not exist" ;;
    esac
fi
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
data=$dir/data
log=$dir/postgres.log
if [ ! -f "$data/PG_VERSION" ]; then
    case $cmd in
    stop) exit 0 ;;
    status) exit 1 ;;
    esac
fi
if [ -f "$data/PG_VERSION" ] && [ -n "${PG_VERSION:-}" ] && [ -z "${PG_BINDIR:-}" ] &&
    [ "$(cat "$data/PG_VERSION")" != "$PG_VERSION" ]; then
    die "$data is a PostgreSQL $(cat "$data/PG_VERSION") cluster, not PG_VERSION=$PG_VERSION"
fi
if [ -f "$data/PG_VERSION" ] && [ -f "$dir/bindir" ]; then
    BIN=$(cat "$dir/bindir")
elif [ -n "${PG_BINDIR:-}" ]; then
    BIN=$PG_BINDIR
else
    BIN=$(bash "$HARNESS_DIR/pgdist.sh" bindir "${PG_VERSION:-15}") || exit 1
fi
[ -x "$BIN/initdb" ] || die "PostgreSQL server binaries not found in $BIN; run: sh tests/harness/deps.sh"
# the 16-18 builds have no client tools; Debian's psql 15 speaks to them all
if [ -x "$BIN/psql" ]; then
    PSQL=$BIN/psql
else
    PSQL=$(command -v psql) || die "psql not found; run: sh tests/harness/deps.sh"
fi

# run a server-side command as the cluster owner, from a directory it can read
as_pg() {
    if is_root; then
        (cd "$dir" && runuser -u postgres -- "$@")
    else
        (cd "$dir" && "$@")
    fi
}

running() {
    [ -f "$data/PG_VERSION" ] && as_pg "$BIN/pg_ctl" -D "$data" status >/dev/null 2>&1
}

log_tail() {
    if [ -f "$log" ]; then
        echo "---- last lines of $log ----" >&2
        tail -25 "$log" >&2
        echo "----" >&2
    fi
}

quote() { # a postgresql.conf string literal
    printf "'%s'" "$(printf '%s' "$1" | sed "s/'/''/g")"
}

write_env() {
    local port
    port=$(cat "$dir/port")
    {
        echo "PGPORT=$port"
        echo "DATABASE_URL=postgresql://postgres@127.0.0.1:$port/orders"
    } >"$dir/env.tmp"
    mv "$dir/env.tmp" "$dir/env"
    cat "$dir/env"
}

init_cluster() {
    if is_root; then
        id postgres >/dev/null 2>&1 ||
            useradd --system --user-group --home-dir /var/lib/postgresql --shell /bin/bash postgres ||
            die "no OS user 'postgres' and useradd failed"
        chown postgres: "$dir"
        runuser -u postgres -- test -w "$dir" -a -x "$dir" ||
            die "user postgres cannot use $dir: every parent directory must be searchable (o+x) by it"
    fi
    rm -rf "$data" # a half-made cluster from an interrupted initdb
    echo "$BIN" >"$dir/bindir"
    if ! as_pg "$BIN/initdb" -D "$data" -U postgres -E UTF8 --no-locale --auth=trust -N \
        >"$dir/initdb.log" 2>&1; then
        cat "$dir/initdb.log" >&2
        die "initdb failed"
    fi
    cat >"$data/pg_hba.conf" <<'EOF'
# written by tests/harness/pg.sh: trust on the socket and on 127.0.0.1 only
local   all             all                     trust
host    all             all     127.0.0.1/32    trust
local   replication     all                     trust
host    replication     all     127.0.0.1/32    trust
EOF
    echo "include_if_exists = 'harness.conf'" >>"$data/postgresql.conf"
    free_ports 1 >"$dir/port"
    if is_root; then chown postgres: "$data/pg_hba.conf" "$dir/port"; fi
}

write_conf() {
    local port sockdir kv
    port=$(cat "$dir/port")
    sockdir=$dir
    # a Unix socket path is limited to 107 bytes: fall back to TCP only
    if [ $((${#dir} + 20)) -gt 100 ]; then
        note "$dir is too long for a Unix socket; TCP only"
        sockdir=""
    fi
    {
        echo "# written by tests/harness/pg.sh at every start; edits are lost"
        echo "listen_addresses = '127.0.0.1'"
        echo "port = $port"
        echo "unix_socket_directories = $(quote "$sockdir")"
        echo "wal_level = logical"
        echo "max_replication_slots = 32"
        echo "max_wal_senders = 32"
        echo "log_line_prefix = '%m [%p] %q%a '"
        echo "log_replication_commands = on"
        for kv in "$@"; do
            case $kv in
            *=*) echo "${kv%%=*} = $(quote "${kv#*=}")" ;;
            *) die "setting '$kv' is not name=value" ;;
            esac
        done
    } >"$data/harness.conf.tmp"
    mv "$data/harness.conf.tmp" "$data/harness.conf"
    if is_root; then chown postgres: "$data/harness.conf"; fi
}

psql_admin() {
    local port
    port=$(cat "$dir/port")
    "$PSQL" -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres -d postgres "$@"
}

do_start() {
    if running; then
        [ $# -eq 0 ] || note "already running; settings $* not applied (use stop first)"
        write_env
        return 0
    fi
    [ -f "$data/PG_VERSION" ] || init_cluster
    write_conf "$@"
    local port
    port=$(cat "$dir/port")
    port_is_free "$port" || die "port $port (kept in $dir/port) is taken by another process"
    if ! as_pg "$BIN/pg_ctl" -D "$data" -l "$log" -w -t 60 -s start; then
        log_tail
        die "PostgreSQL did not start in $dir"
    fi
    local have_orders
    have_orders=$(psql_admin -c "SELECT count(*) FROM pg_database WHERE datname = 'orders'") ||
        die "could not query the new server"
    if [ "$have_orders" = 0 ]; then
        psql_admin -c "CREATE DATABASE orders" || die "could not create database orders"
    fi
    write_env
}

do_stop() {
    local mode=${1:-fast}
    if running; then
        if ! as_pg "$BIN/pg_ctl" -D "$data" -m "$mode" -w -t 60 -s stop; then
            log_tail
            die "PostgreSQL in $dir did not stop"
        fi
    fi
}

do_restart() {
    local mode=${1:-fast}
    case $mode in fast | immediate | smart) ;; *) die "restart mode must be fast or immediate" ;; esac
    if ! running; then
        do_start
        return
    fi
    if ! as_pg "$BIN/pg_ctl" -D "$data" -l "$log" -m "$mode" -w -t 60 -s restart; then
        log_tail
        die "PostgreSQL in $dir did not restart"
    fi
    write_env
}

case $cmd in
start) do_start "$@" ;;
stop) do_stop "$@" ;;
restart) do_restart "$@" ;;
status) running ;;
env) cat "$dir/env" ;;
esac
