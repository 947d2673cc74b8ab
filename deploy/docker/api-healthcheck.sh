#!/bin/bash
# Container healthcheck for orders-api: GET /healthz on the port the api
# listens on (from LISTEN_ADDR, as the api reads it), exit 0 on "200".
# /healthz never touches the database: it says the process serves HTTP.
# bash's /dev/tcp instead of curl, so the slim runtime image needs no extra
# package. Used by the Dockerfile's HEALTHCHECK and deploy/docker-compose.yml.
addr=${LISTEN_ADDR:-127.0.0.1:8080}
port=${addr##*:}
host=${addr%:*}
case $host in
"" | 0.0.0.0) host=127.0.0.1 ;; # wildcard: ask over loopback
"[::]") host=::1 ;;
\[*\]) host=${host#[} host=${host%]} ;;
esac
case $port in
'' | *[!0-9]* | 0)
    echo "healthcheck: cannot tell the port from LISTEN_ADDR=$addr" >&2
    exit 1
    ;;
esac
if ! exec 3<>"/dev/tcp/$host/$port"; then
    echo "healthcheck: cannot connect to $host:$port" >&2
    exit 1
fi
printf 'GET /healthz HTTP/1.0\r\nHost: localhost\r\nConnection: close\r\n\r\n' >&3
status=""
IFS= read -r -t 5 status <&3
exec 3<&-
case $status in
"HTTP/1."[01]" 200"*) exit 0 ;;
esac
echo "healthcheck: GET /healthz on $host:$port answered: ${status:-nothing}" >&2
exit 1
