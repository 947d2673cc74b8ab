#!/bin/sh
# Repeats a failover test N times and prints its figures: one line per run
# (acknowledged orders, lost, duplicated events, takeover seconds), then the
# sums and the min/median/max of each figure.
#   sh tests/failover/runs.sh [N] [standby|pg]
# standby: tests/integration/test_standby_relay.py (two --standby relays, the
#   active one SIGKILLed, later SIGTERMed, under api load);
# pg: tests/integration/test_pg_failover.py (a PostgreSQL 17 or 18 primary
#   stopped under load, its physical standby promoted; PG_VERSION=17|18).
# N defaults to 10; binaries from $BIN_DIR (default bin). Exit: pytest's.
cd "$(dirname "$0")/../.." || exit 1
n=${1:-10}
case ${2:-standby} in
standby) set -- STANDBY_RUNS tests/integration/test_standby_relay.py STANDBY ;;
pg) set -- FAILOVER_RUNS tests/integration/test_pg_failover.py FAILOVER ;;
*)
    echo "usage: $0 [N] [standby|pg]" >&2
    exit 2
    ;;
esac
out=$(mktemp) || exit 1
trap 'rm -f "$out"' EXIT
env "$1=$n" sh tests/run_integration.sh "$2" -s >"$out" 2>&1
rc=$?
grep -a "^$3 run" "$out"
grep -a "^$3-JSON " "$out" | python3 -c '
import json, statistics, sys
runs = [json.loads(line.split(" ", 1)[1]) for line in sys.stdin]
if runs:
    print(f"{len(runs)} runs")
    for k in sorted(runs[0]):
        v = [r[k] for r in runs]
        if isinstance(v[0], (int, float)) and k != "run":
            print(f"  {k}: sum {sum(v):g}, min {min(v):g}, median {statistics.median(v):g}, max {max(v):g}, per run {v}")
'
grep -a -E "passed|failed" "$out" | tail -n 1
[ $rc -eq 0 ] || echo "logs: $(grep -a -o "/tmp/orders-cdc-it\.[A-Za-z0-9]*" "$out" | head -n 1)"
exit $rc
