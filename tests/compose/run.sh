#!/bin/bash
# make compose-test: the compose stack for real, without a registry.
#
#   1. images: the Debian base, Kafka from the cached jars, postgres, api,
#      relay, it (deploy/offline/build.sh; starts the engine if needed)
#   2. the stack up (deploy/docker-compose.yml + docker-compose.offline.yml),
#      waiting until every service is healthy or done
#   3. the integration suite in the `it` service, inside the compose network
#      (deploy/it/run.sh: a smoke test of the stack, then the suite against
#      its Postgres and Kafka)
#   4. container faults against the running stack, each checked by comparing
#      the orders in Postgres with the events in Kafka (tests/compose/faults.py)
#   5. `down -v`, also when something failed
#
# Host ports are free ones picked here, so a `make run` or another stack on
# the default ports is not disturbed. COMPOSE_KEEP=1 leaves the stack up
# (then: tests/harness/docker.sh compose -p orders-cdc-test down -v).
# COMPOSE_TEST_SKIP=suite|faults skips that step. Timings at the end.
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -uo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
cd "$REPO" || exit 1
PROG=compose-test
. tests/harness/common.sh

PROJECT=orders-cdc-test
say() { echo "compose-test: $*"; }
compose() {
    sh tests/harness/docker.sh compose -p "$PROJECT" -f deploy/docker-compose.yml \
        -f deploy/docker-compose.offline.yml "$@"
}

read -r api_port pg_port kafka_port metrics_port < <(free_ports 4 | tr '\n' ' ')
export ORDERS_CDC_API_PORT=$api_port ORDERS_CDC_PG_PORT=$pg_port \
    ORDERS_CDC_KAFKA_PORT=$kafka_port ORDERS_CDC_METRICS_PORT=$metrics_port

mkdir -p build/compose-test
rc=0
timings=()
step() { # step NAME SECONDS RESULT
    timings+=("$(printf '%-22s %5d s  %s' "$1" "$2" "$3")")
}
finish() {
    local t0=$SECONDS
    if [ "${COMPOSE_KEEP:-}" = 1 ]; then
        say "stack kept (COMPOSE_KEEP=1): tests/harness/docker.sh compose -p $PROJECT down -v"
    else
        compose --profile test down -v --remove-orphans -t 60 >/dev/null 2>&1
        step "down -v" $((SECONDS - t0)) done
    fi
    echo
    say "timings"
    printf '  %s\n' "${timings[@]}"
    if [ $rc = 0 ]; then
        say "ok"
    else
        say "FAILED"
    fi
    exit $rc
}
trap finish EXIT
trap 'rc=130; exit' INT
trap 'rc=143; exit' TERM

# the engine, the compose binary and the base, with their progress shown
# (the first use of `compose` below would otherwise build it silently)
t0=$SECONDS
if ! sh tests/harness/docker.sh setup; then
    rc=1
    step "engine, compose, base" $((SECONDS - t0)) FAILED
    exit
fi
step "engine, compose, base" $((SECONDS - t0)) ready
# leftovers of an interrupted run
compose --profile test down -v --remove-orphans -t 10 >/dev/null 2>&1

t0=$SECONDS
if ! sh deploy/offline/build.sh; then
    rc=1
    step images $((SECONDS - t0)) FAILED
    exit
fi
step images $((SECONDS - t0)) built

say "stack up (api on 127.0.0.1:$api_port, Kafka on localhost:$kafka_port)"
t0=$SECONDS
if ! compose up -d --wait --wait-timeout 300; then
    rc=1
    step "stack up" $((SECONDS - t0)) FAILED
    compose ps -a
    compose logs --tail 40
    exit
fi
step "stack up" $((SECONDS - t0)) "healthy"
compose ps --format 'table {{.Service}}\t{{.Status}}'

if [ "${COMPOSE_TEST_SKIP:-}" != suite ]; then
    say "integration suite in the it service (log: build/compose-test/suite.log)"
    t0=$SECONDS
    compose run --rm -T it 2>&1 | tee build/compose-test/suite.log
    src=${PIPESTATUS[0]}
    summary=$(grep -E '^=+ .*(passed|failed|error).* in ' build/compose-test/suite.log | tail -1)
    step suite $((SECONDS - t0)) "exit $src: ${summary:-no pytest summary}"
    [ "$src" = 0 ] || rc=1
fi

if [ "${COMPOSE_TEST_SKIP:-}" != faults ]; then
    say "container faults"
    t0=$SECONDS
    python3 tests/compose/faults.py --api "http://127.0.0.1:$api_port" -- \
        sh tests/harness/docker.sh compose -p "$PROJECT" -f deploy/docker-compose.yml \
        -f deploy/docker-compose.offline.yml 2>&1 | tee build/compose-test/faults.log
    frc=${PIPESTATUS[0]}
    step faults $((SECONDS - t0)) "exit $frc: $(tail -1 build/compose-test/faults.log)"
    [ "$frc" = 0 ] || rc=1
fi
if [ $rc != 0 ]; then
    compose logs --tail 60 relay >build/compose-test/relay.log 2>&1
    say "relay log tail: build/compose-test/relay.log"
fi
