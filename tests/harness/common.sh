# Sourced by the bash scripts in tests/harness/ (deps.sh, pg.sh, kafka.sh)
# and deploy/local/run.sh. Not executable on its own.

HARNESS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
KAFKA_VERSION=4.1.1
ORDERS_CDC_CACHE=${ORDERS_CDC_CACHE:-${HOME:-/root}/.cache/orders-cdc}
KAFKA_HOME=$ORDERS_CDC_CACHE/kafka-$KAFKA_VERSION
KAFKA_LIBS=$KAFKA_HOME/libs
# tests/harness/requirements.txt's venv; tests/integration/test_openapi.py
# computes the same name
PY_VENV=$ORDERS_CDC_CACHE/venv-$(sha256sum "$HARNESS_DIR/requirements.txt" | cut -c1-12)
# The PostgreSQL 16-18 builds (tests/harness/pgdist.sh). As root the server
# runs as the OS user postgres, which cannot enter root's home: there they
# live in /var/cache/orders-cdc.
if [ "$(id -u)" = 0 ]; then
    PG_DIST_CACHE=${ORDERS_CDC_PG_CACHE:-/var/cache/orders-cdc}
else
    PG_DIST_CACHE=${ORDERS_CDC_PG_CACHE:-$ORDERS_CDC_CACHE}
fi

: "${PROG:=$(basename "$0")}"

die() {
    echo "$PROG: error: $*" >&2
    exit 1
}

note() {
    echo "$PROG: $*" >&2
}

is_root() {
    [ "$(id -u)" = 0 ]
}

# free_ports N: print N distinct free TCP ports on 127.0.0.1, one per line.
# All sockets are held open until every port is chosen, so they differ.
free_ports() {
    python3 - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    socks.append(s)
for s in socks:
    print(s.getsockname()[1])
EOF
}

# port_is_free PORT: true when nothing listens on 127.0.0.1:PORT
port_is_free() {
    python3 - "$1" <<'EOF'
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
EOF
}

# java_major PATH: major version of that java (8 for 1.8), empty if unknown.
java_major() {
    "$1" -version 2>&1 |
        sed -nE 's/.*version "([0-9]+)(\.([0-9]+))?.*/\1 \3/p' | head -1 |
        awk '{ if ($1 == 1) print $2; else print $1 }'
}

# find_java: print a java >= 17 ($JAVA wins), or nothing.
find_java() {
    local j m
    for j in ${JAVA:-} "$(command -v java 2>/dev/null || true)" /usr/lib/jvm/*/bin/java; do
        [ -n "$j" ] && [ -x "$j" ] || continue
        m=$(java_major "$j")
        if [ -n "$m" ] && [ "$m" -ge 17 ]; then
            echo "$j"
            return 0
        fi
    done
    return 1
}

# pg_bindir: directory with initdb/pg_ctl/postgres ($PG_BINDIR wins; else the
# newest /usr/lib/postgresql/*/bin; else pg_config's; else initdb on PATH).
pg_bindir() {
    local d
    if [ -n "${PG_BINDIR:-}" ]; then
        echo "$PG_BINDIR"
        return 0
    fi
    d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
    if [ -n "$d" ] && [ -x "$d/initdb" ]; then
        echo "$d"
        return 0
    fi
    if command -v pg_config >/dev/null 2>&1; then
        d=$(pg_config --bindir 2>/dev/null || true)
        if [ -n "$d" ] && [ -x "$d/initdb" ]; then
            echo "$d"
            return 0
        fi
    fi
    d=$(command -v initdb 2>/dev/null || true)
    if [ -n "$d" ]; then
        dirname "$d"
        return 0
    fi
    return 1
}

# kafka_classpath: all cached jars joined by ':'
kafka_classpath() {
    local cp="" j
    for j in "$KAFKA_LIBS"/*.jar; do
        [ -e "$j" ] || die "no Kafka jars in $KAFKA_LIBS; run: sh tests/harness/deps.sh"
        cp=${cp:+$cp:}$j
    done
    echo "$cp"
}

# pid_alive PID: the process exists (a zombie counts as dead)
pid_alive() {
    [ -n "$1" ] && [ -d "/proc/$1" ] || return 1
    ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null
}

# mvn_progress WHAT: Maven's "Downloaded from central: URL" lines on stdin;
# a summary line every 10 s, so a long download is never silent.
mvn_progress() {
    local n=0 shown=$SECONDS line
    while IFS= read -r line; do
        case $line in
        *"Downloaded from "*) n=$((n + 1)) ;;
        *) continue ;;
        esac
        if [ $((SECONDS - shown)) -ge 10 ]; then
            echo "$PROG: maven: $n files downloaded so far (plugins, then the $1 jars)"
            shown=$SECONDS
        fi
    done
    echo "$PROG: maven: $n files downloaded"
}

# mvn_copy_deps DIR WHAT: copy the runtime dependencies of DIR/pom.xml into
# DIR/libs with Maven (Maven Central), three tries, with progress; dies
# naming WHAT.
mvn_copy_deps() {
    local attempt rc
    for attempt in 1 2 3; do
        # Maven's exit status travels through a file: whatever the caller's
        # errexit and pipefail, the pipeline's own status is mvn_progress's.
        {
            rc=0
            (cd "$1" && timeout 900 mvn -B -f pom.xml dependency:copy-dependencies \
                -DincludeScope=runtime -DoutputDirectory="$1/libs") 2>&1 || rc=$?
            echo "$rc" >"$1/mvn.rc"
        } | tee "$1/mvn.log" | mvn_progress "$2"
        if [ "$(cat "$1/mvn.rc")" = 0 ]; then
            rm -f "$1/mvn.rc"
            rm -f "$1/mvn.log"
            return 0
        fi
        note "mvn attempt $attempt failed"
        rm -rf "$1/libs"
        sleep $((attempt * 3))
    done
    grep -E 'ERROR|FAIL' "$1/mvn.log" | tail -40 >&2 || tail -40 "$1/mvn.log" >&2
    die "could not download the $2 jars with Maven"
}
