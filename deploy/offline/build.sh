#!/bin/bash
# Builds every image of the compose stack without a registry (`make
# compose-images`): the Debian base (tests/harness/docker.sh base), the Kafka
# image from the harness's cached jars, then postgres, api (also migrate's),
# relay and it through Compose with deploy/docker-compose.offline.yml. Layers
# are cached by the engine, so a second run only checks.
#
#   sh deploy/offline/build.sh [SERVICE...]    default: all of them
#
# Classic builder (Debian's engine has no buildx). Compose builds one
# service at a time here: api, relay and it share the build stage, which
# parallel classic builds would compile once each.
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
cd "$REPO"
PROG=images
. tests/harness/common.sh
export DOCKER_BUILDKIT=0
BASE_IMAGE=${ORDERS_CDC_BASE_IMAGE:-orders-cdc/debian:bookworm}
KAFKA_IMAGE=orders-cdc/kafka:$KAFKA_VERSION

# show_steps LOG: the builder's "Step N/M : ..." lines as progress; the
# whole output in LOG, its tail shown if the build fails
show_steps() {
    tee "$1" | sed -un 's/^\(Step [0-9]*\/[0-9]*\) : \(.\{0,100\}\).*/  \1 \2/p'
}
fail_log() {
    tail -30 "$1" >&2
    die "building $2 failed (log: $1)"
}

compose() {
    sh tests/harness/docker.sh compose -f deploy/docker-compose.yml \
        -f deploy/docker-compose.offline.yml --profile test "$@"
}

sh tests/harness/docker.sh setup
services=("$@")
[ ${#services[@]} -gt 0 ] || services=(kafka postgres api relay it)
logs=$REPO/build/images
mkdir -p "$logs"
for s in "${services[@]}"; do
    t0=$SECONDS
    log=$logs/$s.log
    case $s in
    kafka)
        # the jars: the harness's cache (Maven Central, tests/harness/kafka-pom.xml)
        sh tests/harness/deps.sh kafka >/dev/null
        note "building $KAFKA_IMAGE (context: deploy/offline and $KAFKA_LIBS)"
        tar -cf - -C "$REPO" deploy/offline -C "$KAFKA_HOME" libs |
            docker build --build-arg "BASE=$BASE_IMAGE" -f deploy/offline/kafka.Dockerfile \
                -t "$KAFKA_IMAGE" - 2>&1 | show_steps "$log" || fail_log "$log" "$KAFKA_IMAGE"
        ;;
    *)
        note "building $s"
        compose build "$s" 2>&1 | show_steps "$log" || fail_log "$log" "$s"
        ;;
    esac
    note "$s: $((SECONDS - t0)) s"
done
# Old builds of these images are left untagged, and so is the newest build
# stage (its image is no image's parent: the others COPY from it). Tagging
# it (a second, fully cached build) keeps it as the cache of `make all`;
# then every untagged image from the base goes (the base's label is
# inherited; nothing else carries it).
if [[ " ${services[*]} " == *" it "* ]]; then
    out=$(docker build -q --build-arg "BASE=$BASE_IMAGE" --build-arg "KAFKA_IMAGE=$KAFKA_IMAGE" \
        -f deploy/Dockerfile --target it-build -t orders-cdc/build-cache:dev . 2>&1) || {
        printf '%s\n' "$out" >&2
        die "tagging the build stage failed"
    }
fi
docker image prune -f --filter label=org.orders-cdc.rootfs-sha256 >/dev/null
