#!/bin/bash
# `make run`: the whole pipeline on this machine, loopback only, no Docker.
#
#   PostgreSQL (wal_level=logical) and a Kafka broker, started by
#   tests/harness/pg.sh and kafka.sh in $RUN_DIR (default .run in the repo;
#   state is kept between runs: same ports, same data), then
#   bin/orders-api --migrate, bin/orders-api and bin/cdc-relay.
#   Prints a curl line to create an order and a kcat line to watch the
#   events, then follows both service logs. Ctrl-C (or SIGTERM) stops the
#   relay, the api, Kafka and Postgres, in that order, and exits 0.
#
# Environment: RUN_DIR, BIN_DIR (default bin), LISTEN_ADDR (default
# 127.0.0.1:8080), API_ARGS and RELAY_ARGS (extra flags, word-split).
# Logs: $RUN_DIR/orders-api.log, $RUN_DIR/cdc-relay.log,
#       $RUN_DIR/pg/postgres.log, $RUN_DIR/kafka/broker.log.
# As root, Postgres runs as user postgres; when that user cannot reach
# $RUN_DIR (a checkout under /root, mode 0700), its cluster lives in
# /var/tmp/orders-cdc-run-<checksum of $RUN_DIR>/pg instead (printed).
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -uo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
cd "$REPO" || exit 1
PROG=run
. tests/harness/common.sh

RUN_DIR=${RUN_DIR:-.run}
BIN_DIR=${BIN_DIR:-bin}
export LISTEN_ADDR=${LISTEN_ADDR:-127.0.0.1:8080}
API=$BIN_DIR/orders-api
RELAY=$BIN_DIR/cdc-relay

for b in "$API" "$RELAY"; do
    [ -x "$b" ] || die "$b is not built (run: make all)"
done
mkdir -p "$RUN_DIR" || exit 1
RUN_DIR=$(cd "$RUN_DIR" && pwd)
chmod 755 "$RUN_DIR" # as root, Postgres runs as user postgres and must reach it
PG_DIR=$RUN_DIR/pg
if is_root && id postgres >/dev/null 2>&1 && ! runuser -u postgres -- test -x "$RUN_DIR" 2>/dev/null; then
    PG_DIR=/var/tmp/orders-cdc-run-$(printf '%s' "$RUN_DIR" | cksum | cut -d' ' -f1)/pg
    mkdir -p "$(dirname "$PG_DIR")" && chmod 755 "$(dirname "$PG_DIR")" || exit 1
    echo "run: user postgres cannot reach $RUN_DIR (a parent directory is not o+x); its cluster lives in $PG_DIR"
fi

host=${LISTEN_ADDR%:*}
port=${LISTEN_ADDR##*:}
python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1].strip("[]"), int(sys.argv[2])))' "$host" "$port" 2>/dev/null ||
    die "$LISTEN_ADDR is in use (another orders-api?); set LISTEN_ADDR=127.0.0.1:PORT"

api_pid=""
relay_pid=""
tail_pid=""
started_pg=0
started_kafka=0

stop_proc() { # stop_proc NAME PID SECONDS
    local name=$1 pid=$2 i=0
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
    echo "run: stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null
    while kill -0 "$pid" 2>/dev/null && [ $i -lt $(($3 * 10)) ]; do
        sleep 0.1
        i=$((i + 1))
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "run: $name did not exit $3 s after SIGTERM; SIGKILL"
        kill -KILL "$pid" 2>/dev/null
    fi
    wait "$pid" 2>/dev/null
}

cleaned=0
cleanup() {
    [ $cleaned = 0 ] || return 0
    cleaned=1
    # no more interruptions; and a closed terminal or pipe (| tee) must not
    # kill us half way through stopping things
    trap '' INT TERM HUP PIPE
    [ -z "$tail_pid" ] || kill "$tail_pid" 2>/dev/null
    stop_proc cdc-relay "$relay_pid" 20
    stop_proc orders-api "$api_pid" 10
    if [ $started_kafka = 1 ]; then
        echo "run: stopping Kafka"
        sh tests/harness/kafka.sh stop "$RUN_DIR/kafka"
    fi
    if [ $started_pg = 1 ]; then
        echo "run: stopping PostgreSQL"
        sh tests/harness/pg.sh stop "$PG_DIR"
    fi
    echo "run: stopped; state kept in $RUN_DIR"
}
trap 'echo; cleanup; exit 0' INT TERM HUP
trap 'cleanup' EXIT

fail() {
    echo "run: error: $*" >&2
    exit 1 # the EXIT trap stops what was started
}

show_log() {
    echo "---- last lines of $1 ----" >&2
    tail -30 "$1" >&2
    echo "----" >&2
}

echo "run: starting PostgreSQL in $PG_DIR"
started_pg=1
pg_env=$(sh tests/harness/pg.sh start "$PG_DIR") || fail "PostgreSQL did not start"
echo "run: starting Kafka in $RUN_DIR/kafka"
started_kafka=1
kafka_env=$(sh tests/harness/kafka.sh start "$RUN_DIR/kafka") || fail "Kafka did not start"
DATABASE_URL=$(printf '%s\n' "$pg_env" | sed -n 's/^DATABASE_URL=//p')
KAFKA_BROKERS=$(printf '%s\n' "$kafka_env" | sed -n 's/^KAFKA_BROKERS=//p')
export DATABASE_URL KAFKA_BROKERS
echo "run: DATABASE_URL=$DATABASE_URL"
echo "run: KAFKA_BROKERS=$KAFKA_BROKERS"

# The topic exists before the first order, so the printed kcat line works
# right away (a consumer of a missing topic stops with "Unknown topic or
# partition"; the broker would only create it on the relay's first produce).
if ! kcat -b "$KAFKA_BROKERS" -L -t orders.events -m 5 2>/dev/null | grep -q 'topic "orders.events" with [1-9]'; then
    echo "run: creating topic orders.events (3 partitions)"
    sh tests/harness/kafka.sh topics "$RUN_DIR/kafka" --create --if-not-exists \
        --topic orders.events --partitions 3 >/dev/null || fail "could not create topic orders.events"
fi

echo "run: $API --migrate"
"$API" --migrate </dev/null || fail "$API --migrate failed"

# fresh service logs each run (the previous one is kept as .1)
for n in orders-api cdc-relay; do
    [ -f "$RUN_DIR/$n.log" ] && mv -f "$RUN_DIR/$n.log" "$RUN_DIR/$n.log.1"
    : >"$RUN_DIR/$n.log"
done

# setsid: Ctrl-C reaches this script only, which then stops them in order
echo "run: starting orders-api on $LISTEN_ADDR"
# shellcheck disable=SC2086
setsid "$API" ${API_ARGS:-} </dev/null >>"$RUN_DIR/orders-api.log" 2>&1 &
api_pid=$!
ok=0
for _ in $(seq 1 100); do
    kill -0 "$api_pid" 2>/dev/null || break
    if curl -fsS -o /dev/null --max-time 1 "http://$LISTEN_ADDR/healthz" 2>/dev/null; then
        ok=1
        break
    fi
    sleep 0.2
done
if [ $ok != 1 ]; then
    show_log "$RUN_DIR/orders-api.log"
    kill -0 "$api_pid" 2>/dev/null || fail "orders-api exited during startup"
    fail "orders-api did not answer http://$LISTEN_ADDR/healthz within 20 s"
fi

echo "run: starting cdc-relay"
# The relay's saved position lives with the rest of this run's state.
export CDC_STATE_FILE="${CDC_STATE_FILE:-$RUN_DIR/cdc-relay.state}"
# shellcheck disable=SC2086
setsid "$RELAY" ${RELAY_ARGS:-} </dev/null >>"$RUN_DIR/cdc-relay.log" 2>&1 &
relay_pid=$!
ok=0
for _ in $(seq 1 100); do
    kill -0 "$relay_pid" 2>/dev/null || break
    # streaming = an active replication slot in our database
    n=$(psql -X -At -d "$DATABASE_URL" -c \
        "SELECT count(*) FROM pg_replication_slots WHERE active AND database = current_database()" 2>/dev/null)
    if [ "${n:-0}" -gt 0 ] 2>/dev/null; then
        ok=1
        break
    fi
    sleep 0.2
done
if ! kill -0 "$relay_pid" 2>/dev/null; then
    show_log "$RUN_DIR/cdc-relay.log"
    fail "cdc-relay exited during startup"
fi
[ $ok = 1 ] || echo "run: warning: cdc-relay runs but no replication slot is active after 20 s; see $RUN_DIR/cdc-relay.log"

cat <<EOF

==== ready ====  (Ctrl-C stops everything)
Create an order:
  curl -sS -X POST -H 'Content-Type: application/json' -d '{"item":"book","quantity":2}' http://$LISTEN_ADDR/orders
Watch the events:
  kcat -C -b $KAFKA_BROKERS -t orders.events -f 'key=%k headers=%h value=%s\n'
Database:
  psql '$DATABASE_URL'
Metrics:
  curl -sS http://$LISTEN_ADDR/metrics; curl -sS http://$(sed -n 's/.*metrics listening addr=\([^ ]*\).*/\1/p' "$RUN_DIR/cdc-relay.log" | tail -1)/metrics
Logs: $RUN_DIR/orders-api.log  $RUN_DIR/cdc-relay.log  $PG_DIR/postgres.log  $RUN_DIR/kafka/broker.log
===============

EOF

tail -n +1 -F "$RUN_DIR/orders-api.log" "$RUN_DIR/cdc-relay.log" &
tail_pid=$!

# until a service exits or a signal arrives (the trap then exits 0)
wait -n "$api_pid" "$relay_pid"
rc=$?
if ! kill -0 "$relay_pid" 2>/dev/null; then
    fail "cdc-relay exited (status $rc); see $RUN_DIR/cdc-relay.log"
fi
fail "orders-api exited (status $rc); see $RUN_DIR/orders-api.log"
