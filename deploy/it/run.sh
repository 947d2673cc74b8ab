#!/bin/bash
# Entry point of the compose `it` service (deploy/Dockerfile, target it):
#
#   1. smoke test of the running stack: POST /orders to the compose api, then
#      wait for that order's OrderCreated event on orders.events, produced by
#      the compose relay;
#   2. the integration suite (tests/run_integration.sh), its Postgres and
#      Kafka fixtures pointed at the compose services instead of starting
#      their own servers.
#
# Environment (set by deploy/docker-compose.yml):
#   ORDERS_CDC_EXTERNAL_API_URL  the api to smoke-test (http://api:8080)
#   ORDERS_CDC_EXTERNAL_KAFKA    bootstrap servers (kafka:9092)
#   ORDERS_CDC_EXTERNAL_PG_URL   a superuser URL of the Postgres server; the
#                                suite makes and drops its own databases there
#   IT_SMOKE_ONLY=1              stop after the smoke test
#   IT_SMOKE_TIMEOUT             seconds to wait for the event (default 60)
# Arguments go to pytest (e.g. -k api, -x).
#
# Also usable outside Docker against any running stack, e.g. `make run`:
#   ORDERS_CDC_EXTERNAL_API_URL=http://127.0.0.1:8080 \
#   ORDERS_CDC_EXTERNAL_KAFKA=127.0.0.1:PORT IT_SMOKE_ONLY=1 bash deploy/it/run.sh
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1

API=${ORDERS_CDC_EXTERNAL_API_URL:-http://api:8080}
KAFKA=${ORDERS_CDC_EXTERNAL_KAFKA:-kafka:9092}
TOPIC=orders.events
SMOKE_TIMEOUT=${IT_SMOKE_TIMEOUT:-60}

say() { echo "it: $*"; }
fail() {
    echo "it: FAILED: $*" >&2
    echo "0 passed, 1 failed"
    exit 1
}

for tool in curl kcat python3; do
    command -v "$tool" >/dev/null 2>&1 || fail "$tool is not installed"
done

# ---- 1. smoke test against the compose api and relay -----------------------
say "waiting for $API/readyz"
ready=0
for _ in $(seq 1 60); do
    if curl -fsS -o /dev/null --max-time 2 "$API/readyz" 2>/dev/null; then
        ready=1
        break
    fi
    sleep 1
done
[ $ready = 1 ] || fail "$API/readyz did not answer 200 within 60 s"

item="it-smoke-$(date +%s)-$$"
body=$(curl -sS --max-time 10 -X POST -H 'Content-Type: application/json' \
    -d "{\"item\":\"$item\",\"quantity\":1}" -w '\n%{http_code}' "$API/orders") ||
    fail "POST $API/orders: curl failed"
code=${body##*$'\n'}
body=${body%$'\n'*}
[ "$code" = 201 ] || fail "POST $API/orders answered $code: $body"
id=$(printf '%s' "$body" | python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])') ||
    fail "POST $API/orders: no id in $body"
say "order $id created; waiting for its event on $TOPIC at $KAFKA"

found=""
deadline=$(($(date +%s) + SMOKE_TIMEOUT))
while [ "$(date +%s)" -lt "$deadline" ]; do
    # -e: exit at the end of the partitions
    found=$(kcat -C -b "$KAFKA" -t "$TOPIC" -o beginning -e -q -m 5 \
        -f '%k %h\n' 2>/dev/null | grep -F "$id " | head -1)
    [ -n "$found" ] && break
    sleep 1
done
[ -n "$found" ] || fail "no event with key $id on $TOPIC within $SMOKE_TIMEOUT s (is the relay running? docker compose logs relay)"
case $found in
*event_type=OrderCreated*) ;;
*) fail "event for $id lacks event_type=OrderCreated: $found" ;;
esac
say "smoke ok: $found"

if [ "${IT_SMOKE_ONLY:-}" = 1 ]; then
    echo "1 passed, 0 failed"
    exit 0
fi

# ---- 2. the integration suite against the compose servers -------------------
# The suite's fixtures start their own Postgres and Kafka unless they know
# the external-server variables (tests/integration/conftest.py reads them).
export ORDERS_CDC_EXTERNAL_PG_URL=${ORDERS_CDC_EXTERNAL_PG_URL:?set ORDERS_CDC_EXTERNAL_PG_URL}
export ORDERS_CDC_EXTERNAL_KAFKA=$KAFKA
say "integration suite against $KAFKA and ${ORDERS_CDC_EXTERNAL_PG_URL%%://*}://...@${ORDERS_CDC_EXTERNAL_PG_URL#*@}"
exec sh tests/run_integration.sh "$@"
