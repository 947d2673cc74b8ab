#!/bin/bash
# make fresh-check: the README's two commands on a new machine, in a container
# made from a bare Debian 12 (debootstrap minbase: no compiler, no make, no
# python, no certificates), as a new user would run them:
#
#   1. the committed tree (git archive of HEAD: uncommitted changes and local
#      build output never leak in) in /root/orders-cdc;
#   2. the README's prerequisite, `apt-get install make`;
#   3. `make run` until it prints "ready"; the kcat line it printed is
#      started before the first order and must see it; the curl line it
#      printed creates that order; then SIGTERM (what Ctrl-C does) and every
#      server it started must be gone;
#   4. `make test`; its exit status is the check's.
#
# The container trusts this machine's extra certificate authorities
# (/usr/local/share/ca-certificates/*.crt, copied in before anything is
# installed): TLS to Maven Central goes through them here. Nothing else
# from the machine goes in.
#
# Environment: FRESH_KEEP=1 keeps the container (docker rm -f it yourself);
# FRESH_SKIP_TEST=1 stops after step 3; FRESH_RUN_TIMEOUT (s, default 1200)
# bounds step 3's wait for "ready". Logs: build/fresh-check/.
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"
PROG=fresh
. tests/harness/common.sh

RUN_TIMEOUT=${FRESH_RUN_TIMEOUT:-1200}
BASE_IMAGE=${ORDERS_CDC_BASE_IMAGE:-orders-cdc/debian:bookworm}
OUT=$REPO/build/fresh-check
name=orders-cdc-fresh-$$
say() { echo "fresh: $*"; }
t_start=$SECONDS

commit=$(git rev-parse --short HEAD) || die "not a git checkout: the check takes the committed tree"
if [ -n "$(git status --porcelain --untracked-files=no)" ]; then
    say "note: uncommitted changes are not part of the check (it runs commit $commit)"
fi

t0=$SECONDS
sh tests/harness/docker.sh base
t_base=$((SECONDS - t0))

rm -rf "$OUT"
mkdir -p "$OUT"
cleanup() {
    local rc=$?
    if [ "${FRESH_KEEP:-}" = 1 ]; then
        say "container kept: $name (docker rm -f $name)"
    else
        docker rm -f "$name" >/dev/null 2>&1 || true
    fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# in: run a bash command line in the container, in the checkout
inside() { docker exec -w /root/orders-cdc "$name" bash -c "$1"; }

# docker-init reaps the orphans the tests leave behind, as an init would
docker create --name "$name" --init --hostname fresh-debian --shm-size 1g \
    "$BASE_IMAGE" sleep infinity >/dev/null
git archive --format=tar --prefix=orders-cdc/ HEAD | docker cp - "$name:/root/"
if ls /usr/local/share/ca-certificates/*.crt >/dev/null 2>&1; then
    tar -C /usr/local/share -cf - ca-certificates | docker cp - "$name:/usr/local/share/"
fi
docker start "$name" >/dev/null
say "container $name from $BASE_IMAGE, commit $commit in /root/orders-cdc"

say "README prerequisite: apt-get install make"
t0=$SECONDS
inside 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends make' \
    >"$OUT/make-install.log" 2>&1 || {
    tail -20 "$OUT/make-install.log"
    die "apt-get install make failed"
}
t_make=$((SECONDS - t0))

# ---- make run ---------------------------------------------------------------
say "make run (log: build/fresh-check/make-run.log)"
t0=$SECONDS
# its own process group, so SIGTERM reaches make and run.sh together, as
# Ctrl-C reaches a terminal's foreground job
inside 'setsid make run >/root/make-run.log 2>&1 </dev/null & echo $! >/root/make-run.pid'
# its output is shown here as it grows (installs, build, start)
shown=0
show_new() {
    local n
    n=$(inside 'wc -l </root/make-run.log' 2>/dev/null) || return 0
    if [ "$n" -gt "$shown" ]; then
        inside "sed -n '$((shown + 1)),${n}p' /root/make-run.log" | sed 's/^/  run| /'
        shown=$n
    fi
}
ready=0
while [ $((SECONDS - t0)) -lt "$RUN_TIMEOUT" ]; do
    show_new
    if inside 'grep -q "^==== ready ====" /root/make-run.log'; then
        ready=1
        break
    fi
    inside 'kill -0 "$(cat /root/make-run.pid)" 2>/dev/null' || break
    sleep 2
done
sleep 1
show_new
docker cp "$name:/root/make-run.log" "$OUT/make-run.log" >/dev/null 2>&1 || true
[ $ready = 1 ] || die "make run did not print ready within $RUN_TIMEOUT s (or exited): build/fresh-check/make-run.log"
t_run=$((SECONDS - t0))
say "make run ready after $t_run s"

curl_line=$(grep -m1 '^  curl ' "$OUT/make-run.log" | sed 's/^  //')
kcat_line=$(grep -m1 '^  kcat ' "$OUT/make-run.log" | sed 's/^  //')
[ -n "$curl_line" ] && [ -n "$kcat_line" ] || die "make run printed no curl or kcat line"
say "the printed kcat line, started before the first order: $kcat_line"
# stdbuf: line-buffered, so its output reaches the file as it comes
inside "(stdbuf -oL $kcat_line) >/root/kcat.out 2>/root/kcat.err </dev/null & echo \$! >/root/kcat.pid"
sleep 3
inside 'kill -0 "$(cat /root/kcat.pid)"' || {
    inside 'cat /root/kcat.err' || true
    die "the printed kcat line exited before any order"
}
say "the printed curl line: $curl_line"
answer=$(inside "$curl_line") || die "the printed curl line failed: $answer"
say "answer: $answer"
id=$(printf '%s' "$answer" | sed -nE 's/.*"id": *"([0-9a-f-]{36})".*/\1/p')
[ -n "$id" ] || die "no order id in the answer"
seen=0
for _ in $(seq 60); do
    if inside "grep -q 'key=$id ' /root/kcat.out"; then
        seen=1
        break
    fi
    sleep 0.5
done
inside 'cat /root/kcat.out; kill "$(cat /root/kcat.pid)"' >"$OUT/kcat.out" 2>&1 || true
[ $seen = 1 ] || die "the kcat line did not show the event of order $id within 30 s (build/fresh-check/kcat.out)"
say "kcat saw it: $(grep -m1 "key=$id " "$OUT/kcat.out" | cut -c1-160)..."

say "stopping make run (SIGTERM to its process group)"
inside 'kill -TERM -- -"$(cat /root/make-run.pid)"'
stopped=0
for _ in $(seq 60); do
    if inside 'grep -q "^run: stopped" /root/make-run.log' &&
        ! inside "grep -qsxE 'postgres|java|orders-api|cdc-relay' /proc/[0-9]*/comm"; then
        stopped=1
        break
    fi
    sleep 1
done
docker cp "$name:/root/make-run.log" "$OUT/make-run.log" >/dev/null 2>&1 || true
tail -6 "$OUT/make-run.log" | sed 's/^/  run| /'
[ $stopped = 1 ] || die "make run did not stop everything within 60 s of SIGTERM"
say "make run stopped cleanly"

if [ "${FRESH_SKIP_TEST:-}" = 1 ]; then
    say "FRESH_SKIP_TEST=1: not running make test"
    say "ok: base $t_base s, make $t_make s, make run ready $t_run s, total $((SECONDS - t_start)) s"
    exit 0
fi

# ---- make test --------------------------------------------------------------
say "make test (log: build/fresh-check/make-test.log)"
t0=$SECONDS
rc=0
inside 'make test' 2>&1 | tee "$OUT/make-test.log" | sed -u 's/^/  test| /' || rc=$?
t_test=$((SECONDS - t0))
# the matrix runner's closing count, or pytest's when one version ran
summary=$(grep -E '^integration: [0-9]+ passed|^=+ .*(passed|failed|error).* in ' \
    "$OUT/make-test.log" | tail -1 || true)
say "make test: exit $rc after $t_test s; ${summary:-no integration summary}"
say "timings: base image $t_base s, apt-get install make $t_make s, make run ready $t_run s," \
    "make test $t_test s, total $((SECONDS - t_start)) s"
[ $rc = 0 ] || die "make test failed in a fresh container (build/fresh-check/make-test.log)"
say "ok: both README commands pass on a fresh Debian 12"
