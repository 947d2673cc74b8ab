#!/bin/bash
# Container healthcheck of orders-api and cdc-relay:
#
#   http-healthcheck VAR PATH
#
# GET PATH on the address in the environment variable VAR (as the binary
# reads it: LISTEN_ADDR for the api, CDC_METRICS_LISTEN for the relay's
# metrics listener), exit 0 on "200". A wildcard host is asked over
# loopback. bash's /dev/tcp instead of curl, so the slim runtime image needs
# no extra package. Used by deploy/Dockerfile's HEALTHCHECKs and
# deploy/docker-compose.yml.
var=${1:?usage: http-healthcheck VAR PATH}
path=${2:?usage: http-healthcheck VAR PATH}
addr=${!var:-}
[ -n "$addr" ] || {
    echo "healthcheck: $var is not set" >&2
    exit 1
}
port=${addr##*:}
host=${addr%:*}
case $host in
"" | 0.0.0.0) host=127.0.0.1 ;; # wildcard: ask over loopback
"[::]") host=::1 ;;
\[*\]) host=${host#[} host=${host%]} ;;
esac
case $port in
'' | *[!0-9]* | 0)
    echo "healthcheck: cannot tell the port from $var=$addr" >&2
    exit 1
    ;;
esac
if ! exec 3<>"/dev/tcp/$host/$port"; then
    echo "healthcheck: cannot connect to $host:$port" >&2
    exit 1
fi
printf 'GET %s HTTP/1.0\r\nHost: localhost\r\nConnection: close\r\n\r\n' "$path" >&3
status=""
IFS= read -r -t 5 status <&3
exec 3<&-
case $status in
"HTTP/1."[01]" 200"*) exit 0 ;;
esac
echo "healthcheck: GET $path on $host:$port answered: ${status:-nothing}" >&2
exit 1
