#!/bin/sh
# kafka-run-class.sh CLASS ARGS...: run a class from /opt/kafka/libs, as the
# script of that name in Kafka's distribution does (KAFKA_HEAP_OPTS,
# KAFKA_OPTS). Tools log warnings only, to stderr.
cls=${1:?usage: kafka-run-class.sh CLASS ARGS...}
shift
# shellcheck disable=SC2086
exec java ${KAFKA_HEAP_OPTS:--Xmx256m} -XX:TieredStopAtLevel=1 ${KAFKA_OPTS:-} \
    -Dlog4j2.configurationFile=/opt/kafka/config/tools-log4j2.properties \
    -cp '/opt/kafka/libs/*' "$cls" "$@"
