#!/bin/sh
# Integration and fault tests: real Postgres and Kafka on loopback (started by
# tests/integration/conftest.py through tests/harness/*.sh), project binaries
# from $BIN_DIR (default bin). Extra arguments go to pytest (-k, -x, or
# tests/integration/test_x.py to run only that file).
# pytest's summary is the last line printed and its exit code is ours
# (5, "no tests collected", fails like any other non-zero code).
# Server state and logs: a /tmp/orders-cdc-it.* directory, removed after a
# green run, kept (and named at the start) otherwise; ORDERS_CDC_KEEP=1 keeps it.
# PostgreSQL: PG_VERSION=15|16|17|18 (default 15). With PG_MATRIX set and
# PG_VERSION not (`make test`), tests/run_matrix.py runs one such run per
# version (or several sharing its tests) at once, combined summary last.
cd "$(dirname "$0")/.." || exit 1

# the modules the tests import beyond the standard library (tests/harness/deps.sh)
has_modules='import importlib.util as u, sys
sys.exit(any(u.find_spec(m) is None for m in ("pytest", "yaml", "jsonschema")))'
PY=""
for p in python3 /usr/bin/python3; do
    if command -v "$p" >/dev/null 2>&1 && "$p" -c "$has_modules" 2>/dev/null; then
        PY=$p
        break
    fi
done
if [ -z "$PY" ]; then
    echo "integration: no python3 with pytest, yaml and jsonschema; run: sh tests/harness/deps.sh"
    echo "0 passed, 1 failed"
    exit 1
fi

if [ -z "${PG_VERSION:-}" ] && [ -n "${PG_MATRIX:-}" ]; then
    exec "$PY" tests/run_matrix.py "$@"
fi

RUN=$(mktemp -d /tmp/orders-cdc-it.XXXXXX) || exit 1
chmod 755 "$RUN"
export ORDERS_CDC_RUN_DIR="$RUN"
export PYTHONDONTWRITEBYTECODE=1
echo "integration: BIN_DIR=${BIN_DIR:-bin}, PostgreSQL ${PG_VERSION:-15}, servers and logs in $RUN (kept if a test fails)"

# Servers are stopped by the fixtures; this is the safety net for a pytest
# that died or was interrupted. Silent, so pytest's summary stays last.
cleanup() {
    sh tests/harness/pg.sh stop "$RUN/pg" immediate >/dev/null 2>&1
    sh tests/harness/kafka.sh kill "$RUN/kafka" >/dev/null 2>&1
}
trap 'cleanup; exit 130' INT
trap 'cleanup; exit 143' TERM

# tests/integration (and make bench's server-free parsing and report tests)
# unless the arguments name test files or directories
target="tests/integration tests/bench/test_bench_parse.py"
for a in "$@"; do
    case $a in tests/*) target="" ;; esac
done
"$PY" -m pytest -v -p no:cacheprovider --durations=10 $target "$@"
rc=$?
cleanup
if [ $rc -eq 0 ] && [ -z "${ORDERS_CDC_KEEP:-}" ]; then
    rm -rf "$RUN"
fi
exit $rc
