#!/bin/bash
# Installs what building, running and testing need, then caches the Kafka
# jars. Idempotent; when everything is present it only checks (well under a
# second) and prints one line.
#
#   sh tests/harness/deps.sh [kafka|run|test]
#
#   kafka Java, Maven and the Kafka jars only (deploy/offline/build.sh)
#   run   what `make run` needs: compiler and the four -dev libraries,
#         PostgreSQL, Java and the Kafka jars, kcat, curl, psql, python3
#   test  (the default) all of that, plus what the tests, `make lint`,
#         `make fuzz` and `make valgrind` need: clang with its fuzzer runtime,
#         clang-format, cppcheck, valgrind, openssl, pytest, PyYAML
#
# As root it installs the missing Debian packages with apt-get, in one
# `apt-get install` (the clang fuzzer runtime's name comes from apt's
# candidate clang when clang is not installed yet), printing its progress;
# otherwise it prints the apt-get line to run and exits 1.
# Kafka: ${ORDERS_CDC_CACHE:-$HOME/.cache/orders-cdc}/kafka-4.1.1/libs/*.jar,
# from tests/harness/kafka-pom.xml via Maven (Maven Central). It is downloaded
# into a temporary directory and renamed into place, so an interrupted
# download is never taken for a complete one; a changed pom re-downloads.
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -euo pipefail
PROG=deps
. "$(dirname "$0")/common.sh"
export DEBIAN_FRONTEND=noninteractive

profile=${1:-test}
case $profile in kafka | run | test) ;; *)
    echo "usage: sh tests/harness/deps.sh [kafka|run|test]" >&2
    exit 2
    ;;
esac

pkgs=()
why=()
add() { # add PACKAGE REASON
    local p
    for p in "${pkgs[@]+"${pkgs[@]}"}"; do
        [ "$p" = "$1" ] && return 0
    done
    pkgs+=("$1")
    why+=("$2")
}
have() { command -v "$1" >/dev/null 2>&1; }
has_test_modules='import importlib.util as u, sys
sys.exit(any(u.find_spec(m) is None for m in ("pytest", "yaml", "jsonschema")))'
dpkg_has() { dpkg-query -W -f='${Status}\n' "$1" 2>/dev/null | grep -q '^install ok installed'; }

# The clang major version: the installed clang's, else apt's candidate's
# (clang depends on clang-N), so the fuzzer runtime joins the same
# apt-get install as clang itself. Empty when neither is known.
clang_major() {
    if have clang; then
        clang --version | sed -nE 's/.*clang version ([0-9]+).*/\1/p' | head -1
    else
        apt-cache depends clang 2>/dev/null | sed -nE 's/^ *Depends: clang-([0-9]+)$/\1/p' | head -1
    fi
}

fuzzer_runtime_present() {
    local rt
    have clang || return 1
    rt=$(clang -print-runtime-dir 2>/dev/null || true)
    ls "$rt"/libclang_rt.fuzzer*.a >/dev/null 2>&1 ||
        ls "$(dirname "$rt")"/*/libclang_rt.fuzzer*.a >/dev/null 2>&1
}

check_kafka() {
    have mvn || add maven "mvn missing (fetches the Kafka jars)"
    find_java >/dev/null || add openjdk-17-jre-headless "no java >= 17"
}

check_run() {
    have cc && have make || add build-essential "cc/make missing"
    have pkg-config || add pkg-config "pkg-config missing"
    local mod
    for mod in libpq:libpq-dev rdkafka:librdkafka-dev jansson:libjansson-dev \
        libmicrohttpd:libmicrohttpd-dev; do
        have pkg-config && pkg-config --exists "${mod%%:*}" ||
            add "${mod#*:}" "pkg-config module ${mod%%:*} missing"
    done
    have psql && pg_bindir >/dev/null && [ -x "$(pg_bindir)/postgres" ] ||
        add postgresql "postgres server binaries missing"
    have kcat || add kcat "kcat missing"
    have curl || add curl "curl missing"
    have python3 || add python3 "python3 missing"
    have runuser && have setsid || add util-linux "runuser/setsid missing"
}

check_test() {
    dpkg_has postgresql-contrib || add postgresql-contrib "not installed"
    if ! fuzzer_runtime_present; then
        # libFuzzer/sanitizer runtimes for clang (a Recommends, easy to miss)
        have clang || add clang "clang missing"
        local v
        v=$(clang_major)
        [ -z "$v" ] || add "libclang-rt-$v-dev" "clang $v fuzzer runtime missing"
    fi
    have clang-format || add clang-format "clang-format missing"
    have cppcheck || add cppcheck "cppcheck missing"
    have valgrind || add valgrind "valgrind missing (make valgrind)"
    have promtool || add prometheus "promtool missing (make lint: alert rules; make test: metrics)"
    have openssl || add openssl "openssl missing (the TLS tests make a throwaway CA)"
    if ! python3 -c "$has_test_modules" 2>/dev/null &&
        ! /usr/bin/python3 -c "$has_test_modules" 2>/dev/null; then
        # the integration tests' interpreter (and make lint's compose reader):
        # pytest, PyYAML, jsonschema
        add python3-pytest "python3 -m pytest, yaml or jsonschema missing"
        add python3-yaml "python3 -m pytest, yaml or jsonschema missing"
        add python3-jsonschema "python3 -m pytest, yaml or jsonschema missing"
    fi
    # the venv of tests/harness/requirements.txt
    [ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import ensurepip' 2>/dev/null ||
        add python3-venv "python3 -m venv needs ensurepip"
    dpkg_has locales-all || add locales-all "de_DE.UTF-8 for the translated lc_messages test"
}

check_all() {
    pkgs=()
    why=()
    check_kafka
    [ "$profile" = kafka ] || check_run
    [ "$profile" != test ] || check_test
}

# apt_progress LABEL: read apt's --status-fd lines ("dlstatus:N:PCT:MSG",
# "pmstatus:PKG:PCT:MSG") on stdin and print one line each time the
# percentage passes a tenth, or every 15 s, so a long install is never silent.
apt_progress() {
    local label=$1 kind pct msg last=-10 shown=$SECONDS
    while IFS=: read -r kind _ pct msg; do
        case $kind in dlstatus | pmstatus) ;; *) continue ;; esac
        pct=${pct%%.*}
        [ -n "$pct" ] || continue
        if [ "$kind" != "${last_kind:-}" ]; then
            last=-10
            last_kind=$kind
        fi
        if [ "$pct" -ge $((last + 10)) ] || [ $((SECONDS - shown)) -ge 15 ]; then
            [ "$kind" = dlstatus ] && what=downloading || what=installing
            printf 'deps: %s: %s %3d%%  %s\n' "$label" "$what" "$pct" "$msg"
            last=$pct
            shown=$SECONDS
        fi
    done
}

apt_install() {
    local log t0
    log=$(mktemp /tmp/orders-cdc-apt.XXXXXX)
    t0=$SECONDS
    echo "deps: apt-get update"
    if ! apt-get -o DPkg::Lock::Timeout=300 update -qq >"$log" 2>&1; then
        tail -30 "$log" >&2
        die "apt-get update failed (full log: $log)"
    fi
    # now that apt knows the candidates: the fuzzer runtime matching the clang
    # about to be installed
    check_all
    [ ${#pkgs[@]} -gt 0 ] || return 0
    for i in "${!pkgs[@]}"; do
        echo "deps: installing ${pkgs[$i]} (${why[$i]})"
    done
    echo "deps: apt-get install ${pkgs[*]} (log: $log)"
    # status lines on fd 3 -> apt_progress; apt's own output -> the log
    if ! apt-get -o DPkg::Lock::Timeout=300 -o APT::Status-Fd=3 install -y -q \
        --no-install-recommends "${pkgs[@]}" 3>&1 >>"$log" 2>&1 | apt_progress apt; then
        tail -30 "$log" >&2
        die "apt-get install failed (full log: $log)"
    fi
    rm -f "$log"
    echo "deps: apt-get installed ${#pkgs[@]} package(s) and their dependencies in $((SECONDS - t0)) s"
    hash -r
}

check_all
if [ ${#pkgs[@]} -gt 0 ]; then
    if ! is_root; then
        for i in "${!pkgs[@]}"; do
            echo "deps: missing ${pkgs[$i]} (${why[$i]})" >&2
        done
        echo "deps: not root; run:  sudo apt-get update && sudo DEBIAN_FRONTEND=noninteractive" \
            "apt-get install -y --no-install-recommends ${pkgs[*]}" >&2
        exit 1
    fi
    have apt-get || die "apt-get not found; install by hand: ${pkgs[*]}"
    apt_install
    check_all
    [ ${#pkgs[@]} -eq 0 ] || die "still missing after apt-get: ${pkgs[*]}"
fi

# ---- PyPI tools: tests/harness/requirements.txt in a venv of their own --------
# Everything pinned, installed with --no-deps (the file is the whole closure),
# into a temporary directory renamed into place under the cache lock, so an
# interrupted install is never taken for a complete one. (Renaming breaks the
# venv's bin/ scripts' #! lines, not bin/python: run tools as
# "$PY_VENV/bin/python -m MODULE".) Only the tests use them.
if [ "$profile" = test ] && [ ! -f "$PY_VENV/complete" ]; then
    mkdir -p "$ORDERS_CDC_CACHE"
    (
        flock 9
        [ -f "$PY_VENV/complete" ] && exit 0
        find "$ORDERS_CDC_CACHE" -maxdepth 1 -name '.venv-build.*' -exec rm -rf {} + 2>/dev/null
        t0=$(date +%s)
        vtmp=$(mktemp -d "$ORDERS_CDC_CACHE/.venv-build.XXXXXX")
        /usr/bin/python3 -m venv "$vtmp" || die "/usr/bin/python3 -m venv failed"
        if ! "$vtmp/bin/python" -m pip install -q --no-deps --disable-pip-version-check \
            -r "$HARNESS_DIR/requirements.txt" >"$vtmp/pip.log" 2>&1; then
            tail -20 "$vtmp/pip.log" >&2
            rm -rf "$vtmp"
            die "pip install -r tests/harness/requirements.txt failed"
        fi
        rm -rf "$PY_VENV"
        touch "$vtmp/complete"
        mv -T "$vtmp" "$PY_VENV"
        echo "deps: PyPI tools ready in $PY_VENV ($(($(date +%s) - t0)) s)"
    ) 9>"$ORDERS_CDC_CACHE/.lock" || exit 1
fi

# ---- PostgreSQL 16-18 builds for the tests' version matrix (tests/harness/pgdist.sh) --
if [ "$profile" = test ]; then
    bash "$HARNESS_DIR/pgdist.sh" fetch || exit 1
fi

# ---- Kafka jars -------------------------------------------------------------
pom=$HARNESS_DIR/kafka-pom.xml
stamp=$(sha256sum "$pom" | cut -c1-64)
jars_ready() {
    [ -f "$KAFKA_HOME/pom.sha256" ] && [ "$(cat "$KAFKA_HOME/pom.sha256")" = "$stamp" ] &&
        [ -f "$KAFKA_LIBS/kafka_2.13-$KAFKA_VERSION.jar" ]
}
if jars_ready; then
    echo "deps: ok ($profile; Kafka $KAFKA_VERSION jars in $KAFKA_LIBS)"
    exit 0
fi

mkdir -p "$ORDERS_CDC_CACHE"
# one download at a time; a second deps.sh waits, then finds the jars there
exec 9>"$ORDERS_CDC_CACHE/.lock"
flock 9
if jars_ready; then
    echo "deps: ok ($profile; Kafka $KAFKA_VERSION jars in $KAFKA_LIBS)"
    exit 0
fi
# leftovers of interrupted downloads
find "$ORDERS_CDC_CACHE" -maxdepth 1 \( -name '.kafka-download.*' -o -name '.kafka-old.*' \) \
    -exec rm -rf {} + 2>/dev/null || true
echo "deps: downloading Kafka $KAFKA_VERSION jars from Maven Central into $KAFKA_HOME"
tmp=$(mktemp -d "$ORDERS_CDC_CACHE/.kafka-download.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
cp "$pom" "$tmp/pom.xml"
t0=$SECONDS
mvn_copy_deps "$tmp" Kafka
for j in "kafka_2.13-$KAFKA_VERSION.jar" "kafka-tools-$KAFKA_VERSION.jar" \
    "kafka-clients-$KAFKA_VERSION.jar" log4j-slf4j-impl-*.jar; do
    ls "$tmp/libs/"$j >/dev/null 2>&1 || die "Maven finished but $j is missing"
done
rm -rf "$tmp/target"
echo "$stamp" >"$tmp/pom.sha256"
chmod 755 "$tmp"
old=""
if [ -e "$KAFKA_HOME" ]; then
    old=$ORDERS_CDC_CACHE/.kafka-old.$$
    mv "$KAFKA_HOME" "$old"
fi
mv -T "$tmp" "$KAFKA_HOME"
trap - EXIT
[ -z "$old" ] || rm -rf "$old"
echo "deps: Kafka jars ready ($(ls "$KAFKA_LIBS" | wc -l) jars, $(du -sh "$KAFKA_LIBS" | cut -f1), $((SECONDS - t0)) s)"
