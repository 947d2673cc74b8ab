#!/bin/bash
# Set-up step of `make bench` (not of `make test`): what only the benchmarks
# need, on top of tests/harness/deps.sh. Idempotent; quick when all is there.
#
#   sh tests/bench/setup.sh
#
# Debian packages (as root with apt-get; otherwise prints the line to run):
#   wrk (the api's HTTP load), python3-matplotlib (the PNG plots).
# Debezium: ${ORDERS_CDC_CACHE:-$HOME/.cache/orders-cdc}/debezium-3.6.1.Final/libs,
# from tests/bench/debezium-pom.xml via Maven (Maven Central), downloaded into
# a temporary directory and renamed into place; a changed pom re-downloads.
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -euo pipefail
PROG=bench-setup
. "$(dirname "$0")/../harness/common.sh"
export DEBIAN_FRONTEND=noninteractive
BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
DEBEZIUM_VERSION=3.6.1.Final
DBZ_HOME=$ORDERS_CDC_CACHE/debezium-$DEBEZIUM_VERSION

pkgs=()
command -v wrk >/dev/null 2>&1 || pkgs+=(wrk)
# Debian's python3 (the one make bench runs), which apt's matplotlib is for
/usr/bin/python3 -c 'import matplotlib' 2>/dev/null || pkgs+=(python3-matplotlib)
if [ ${#pkgs[@]} -gt 0 ]; then
    is_root || die "missing ${pkgs[*]}; run: sudo apt-get update && sudo apt-get install -y ${pkgs[*]}"
    note "installing ${pkgs[*]}"
    log=$(mktemp /tmp/orders-cdc-apt.XXXXXX)
    if ! apt-get -o DPkg::Lock::Timeout=300 update -qq >"$log" 2>&1 ||
        ! apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "${pkgs[@]}" >>"$log" 2>&1; then
        tail -30 "$log" >&2
        die "apt-get failed (full log: $log)"
    fi
    rm -f "$log"
fi

pom=$BENCH_DIR/debezium-pom.xml
stamp=$(sha256sum "$pom" | cut -c1-64)
have_jars() {
    [ -f "$DBZ_HOME/pom.sha256" ] && [ "$(cat "$DBZ_HOME/pom.sha256")" = "$stamp" ] &&
        [ -f "$DBZ_HOME/libs/debezium-connector-postgres-$DEBEZIUM_VERSION.jar" ]
}
if have_jars; then
    note "ok (Debezium $DEBEZIUM_VERSION jars in $DBZ_HOME/libs)"
    exit 0
fi
mkdir -p "$ORDERS_CDC_CACHE"
exec 9>"$ORDERS_CDC_CACHE/.lock-debezium"
flock 9
if have_jars; then
    exit 0
fi
note "downloading Debezium $DEBEZIUM_VERSION and Kafka Connect jars from Maven Central into $DBZ_HOME"
tmp=$(mktemp -d "$ORDERS_CDC_CACHE/.debezium-download.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
cp "$pom" "$tmp/pom.xml"
mvn_copy_deps "$tmp" Debezium
for j in "debezium-connector-postgres-$DEBEZIUM_VERSION.jar" "debezium-connect-plugins-$DEBEZIUM_VERSION.jar" \
    connect-runtime-4.1.1.jar connect-json-4.1.1.jar; do
    [ -f "$tmp/libs/$j" ] || die "Maven finished but $j is missing"
done
rm -rf "$tmp/target" "$tmp/pom.xml"
echo "$stamp" >"$tmp/pom.sha256"
chmod 755 "$tmp"
rm -rf "$DBZ_HOME"
mv -T "$tmp" "$DBZ_HOME"
trap - EXIT
note "Debezium jars ready ($(ls "$DBZ_HOME/libs" | wc -l) jars)"
