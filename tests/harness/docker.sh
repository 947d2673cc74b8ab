#!/bin/bash
# The Docker side of the container tests (make fresh-check, make compose-test),
# on a machine where no registry is reachable: Debian's engine, Compose built
# from the Go module proxy, and a Debian base image made with debootstrap.
# Each step is idempotent and cached, so a warm machine only checks.
#
#   docker.sh engine       docker.io installed (apt-get), dockerd answering:
#                          an engine that already answers is used as it is;
#                          otherwise dockerd is started as root, log in
#                          /var/log/orders-cdc-dockerd.log
#   docker.sh compose-bin  print the path of Docker Compose $COMPOSE_VERSION,
#                          built with `go build` on first use (Go >= 1.26 on
#                          PATH or in /usr/local/go) and cached; also linked as
#                          the CLI plugin, so `docker compose` works
#   docker.sh base         image $BASE_IMAGE: Debian 12 from `debootstrap
#                          --variant=minbase bookworm` against this machine's
#                          Debian mirror, with its apt sources; the root file
#                          system is cached as a tarball, the image imported
#                          from it when missing or older
#   docker.sh setup        all three
#   docker.sh compose ARGS run the compose binary with ARGS
#
# Cache: ${ORDERS_CDC_CACHE:-~/.cache/orders-cdc}/{compose-$COMPOSE_VERSION,
# debian-bookworm-minbase.tar.gz}. Builds use the classic builder
# (DOCKER_BUILDKIT=0): Debian's engine has no buildx plugin.
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -euo pipefail
PROG=docker.sh
. "$(dirname "$0")/common.sh"
export DEBIAN_FRONTEND=noninteractive DOCKER_BUILDKIT=0

COMPOSE_VERSION=v5.6.0
BASE_IMAGE=${ORDERS_CDC_BASE_IMAGE:-orders-cdc/debian:bookworm}
BASE_TAR=$ORDERS_CDC_CACHE/debian-bookworm-minbase.tar.gz
COMPOSE_BIN=$ORDERS_CDC_CACHE/compose-$COMPOSE_VERSION/docker-compose
DOCKERD_LOG=/var/log/orders-cdc-dockerd.log

usage() {
    sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

have() { command -v "$1" >/dev/null 2>&1; }

apt_install() { # apt_install PACKAGE...: the missing ones, quietly
    is_root || die "not root; run: sudo apt-get install $*"
    note "installing $* (apt-get)"
    local log
    log=$(mktemp /tmp/orders-cdc-apt.XXXXXX)
    if ! { apt-get -o DPkg::Lock::Timeout=300 update -qq &&
        apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "$@"; } >"$log" 2>&1; then
        tail -20 "$log" >&2
        die "apt-get install $* failed (log: $log)"
    fi
    rm -f "$log"
    hash -r
}

engine_answers() { docker info >/dev/null 2>&1; }

do_engine() {
    have dockerd || apt_install docker.io
    have docker || apt_install docker.io
    engine_answers && return 0
    is_root || die "no Docker engine answers and only root can start dockerd"
    mkdir -p "$ORDERS_CDC_CACHE"
    exec 8>"$ORDERS_CDC_CACHE/.dockerd.lock"
    flock 8
    if ! engine_answers; then
        local pid=""
        [ -f /var/run/docker.pid ] && pid=$(cat /var/run/docker.pid)
        if pid_alive "$pid" && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q dockerd; then
            note "dockerd $pid is starting; waiting for it"
        else
            note "starting dockerd (log: $DOCKERD_LOG)"
            # its own session: it outlives this script, and a Ctrl-C meant
            # for a test does not reach it
            setsid dockerd >>"$DOCKERD_LOG" 2>&1 </dev/null &
        fi
        local t0=$SECONDS
        until engine_answers; do
            if [ $((SECONDS - t0)) -ge 60 ]; then
                tail -20 "$DOCKERD_LOG" >&2
                die "dockerd did not answer within 60 s (log: $DOCKERD_LOG)"
            fi
            sleep 0.5
        done
        note "dockerd answers ($((SECONDS - t0)) s)"
    fi
    exec 8>&-
}

find_go() {
    local g
    for g in "$(command -v go 2>/dev/null || true)" /usr/local/go/bin/go; do
        [ -n "$g" ] && [ -x "$g" ] && echo "$g" && return 0
    done
    return 1
}

do_compose_bin() {
    if [ ! -x "$COMPOSE_BIN" ]; then
        mkdir -p "$ORDERS_CDC_CACHE"
        exec 8>"$ORDERS_CDC_CACHE/.compose.lock"
        flock 8
        if [ ! -x "$COMPOSE_BIN" ]; then
            local go tmp t0=$SECONDS
            go=$(find_go) || die "Go is needed to build Docker Compose $COMPOSE_VERSION (not found on PATH or in /usr/local/go)"
            tmp=$(mktemp -d "$ORDERS_CDC_CACHE/.compose-build.XXXXXX")
            note "building Docker Compose $COMPOSE_VERSION from the Go module proxy (about 2 min; $($go version))"
            if ! (cd "$tmp" && "$go" mod init orders-cdc-compose &&
                "$go" get "github.com/docker/compose/v5/cmd@$COMPOSE_VERSION" &&
                "$go" build -trimpath -ldflags "-s -w -X github.com/docker/compose/v5/internal.Version=$COMPOSE_VERSION" \
                    -o docker-compose github.com/docker/compose/v5/cmd) >"$tmp.log" 2>&1; then
                tail -20 "$tmp.log" >&2
                rm -rf "$tmp"
                die "could not build Docker Compose (log: $tmp.log)"
            fi
            mkdir -p "$(dirname "$COMPOSE_BIN")"
            mv "$tmp/docker-compose" "$COMPOSE_BIN"
            rm -rf "$tmp" "$tmp.log"
            note "Docker Compose $COMPOSE_VERSION built in $((SECONDS - t0)) s: $COMPOSE_BIN"
        fi
        exec 8>&-
    fi
    # the CLI plugin, so `docker compose` works too (docs/deployment.md)
    local plugins=${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins
    if [ "$(readlink "$plugins/docker-compose" 2>/dev/null)" != "$COMPOSE_BIN" ]; then
        mkdir -p "$plugins" && ln -sfn "$COMPOSE_BIN" "$plugins/docker-compose" ||
            note "could not link $plugins/docker-compose (docker compose); $COMPOSE_BIN works alone"
    fi
    echo "$COMPOSE_BIN"
}

# The machine's Debian mirror: the first URI of a deb822 source or a
# one-line source for bookworm, else deb.debian.org.
debian_mirror() {
    local f uri
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        uri=$(awk '/^URIs:/ { u = $2 } /^Suites:.*\<bookworm\>/ { if (u != "") { print u; exit } } /^$/ { u = "" }' "$f")
        [ -n "$uri" ] && echo "$uri" && return 0
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        uri=$(awk '$1 == "deb" && $3 == "bookworm" { print $2; exit }' "$f")
        [ -n "$uri" ] && echo "$uri" && return 0
    done
    echo http://deb.debian.org/debian
}

make_base_tar() {
    local root mirror t0=$SECONDS
    have debootstrap || apt_install debootstrap
    mirror=$(debian_mirror)
    root=$(mktemp -d "$ORDERS_CDC_CACHE/.rootfs.XXXXXX")
    note "debootstrap --variant=minbase bookworm from $mirror (about a minute)"
    if ! debootstrap --variant=minbase bookworm "$root" "$mirror" >"$root.log" 2>&1; then
        tail -20 "$root.log" >&2
        rm -rf "$root"
        die "debootstrap failed (log: $root.log)"
    fi
    # the machine's apt sources (updates, security), as a new machine of
    # this kind has them; apt lists and downloaded packages are not kept
    if ls /etc/apt/sources.list.d/*.sources >/dev/null 2>&1; then
        rm -f "$root/etc/apt/sources.list"
        cp /etc/apt/sources.list.d/*.sources "$root/etc/apt/sources.list.d/"
    fi
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/tmp/*
    tar -C "$root" --numeric-owner -cf - . | gzip -1 >"$BASE_TAR.tmp"
    mv "$BASE_TAR.tmp" "$BASE_TAR"
    rm -rf "$root" "$root.log"
    note "base file system cached: $BASE_TAR ($(du -h "$BASE_TAR" | cut -f1), $((SECONDS - t0)) s)"
}

do_base() {
    mkdir -p "$ORDERS_CDC_CACHE"
    exec 8>"$ORDERS_CDC_CACHE/.base.lock"
    flock 8
    [ -s "$BASE_TAR" ] || make_base_tar
    local sum have_sum
    sum=$(sha256sum "$BASE_TAR" | cut -c1-64)
    have_sum=$(docker image inspect -f '{{ index .Config.Labels "org.orders-cdc.rootfs-sha256" }}' \
        "$BASE_IMAGE" 2>/dev/null || true)
    if [ "$have_sum" != "$sum" ]; then
        note "importing $BASE_TAR as $BASE_IMAGE"
        docker import \
            --change 'CMD ["bash"]' \
            --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
            --change "LABEL org.orders-cdc.rootfs-sha256=$sum" \
            "$BASE_TAR" "$BASE_IMAGE" >/dev/null
    fi
    exec 8>&-
}

[ $# -ge 1 ] || usage
cmd=$1
shift
case $cmd in
engine) do_engine ;;
compose-bin) do_compose_bin ;;
base)
    do_engine
    do_base
    ;;
setup)
    do_engine
    do_compose_bin >/dev/null
    do_base
    ;;
compose)
    bin=$(do_compose_bin)
    exec "$bin" "$@"
    ;;
*) usage ;;
esac
