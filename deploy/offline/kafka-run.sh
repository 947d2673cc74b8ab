#!/bin/bash
# Entry point of deploy/offline/kafka.Dockerfile: the broker configured the
# way the apache/kafka image configures it. Every KAFKA_X_Y variable is the
# property x.y ("___" -> "-", "__" -> "_", "_" -> "."; the JVM variables
# KAFKA_HEAP_OPTS, KAFKA_OPTS, KAFKA_JVM_PERFORMANCE_OPTS, KAFKA_LOG4J_OPTS,
# KAFKA_GC_LOG_OPTS and KAFKA_JMX_OPTS are not properties). On first start
# the log directory is formatted with $CLUSTER_ID (required). Logs go to
# stdout (/opt/kafka/config/log4j2.properties).
set -euo pipefail
: "${CLUSTER_ID:?set CLUSTER_ID (22 characters of base64url, e.g. from kafka-storage.sh random-uuid)}"
conf=/opt/kafka/config
props=$conf/server.properties
{
    echo "# written by /etc/kafka/docker/run from the KAFKA_* variables"
    while IFS='=' read -r name value; do
        case $name in
        KAFKA_HEAP_OPTS | KAFKA_OPTS | KAFKA_JVM_PERFORMANCE_OPTS | KAFKA_LOG4J_OPTS | \
            KAFKA_GC_LOG_OPTS | KAFKA_JMX_OPTS) continue ;;
        KAFKA_*) ;;
        *) continue ;;
        esac
        key=${name#KAFKA_}
        key=${key//___/-}
        key=${key//__/@}
        key=${key//_/.}
        key=${key//@/_}
        printf '%s=%s\n' "${key,,}" "$value"
    done < <(env)
} >"$props"
logdirs=$(sed -n 's/^log\.dirs=//p' "$props")
if [ -n "$logdirs" ] && [ ! -f "${logdirs%%,*}/meta.properties" ]; then
    /opt/kafka/bin/kafka-run-class.sh kafka.tools.StorageTool format -t "$CLUSTER_ID" -c "$props"
fi
# shellcheck disable=SC2086
exec java ${KAFKA_HEAP_OPTS:--Xmx1g -Xms1g} ${KAFKA_JVM_PERFORMANCE_OPTS:--XX:+UseG1GC} \
    -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true ${KAFKA_OPTS:-} \
    -Dlog4j2.configurationFile="$conf/log4j2.properties" \
    -cp '/opt/kafka/libs/*' kafka.Kafka "$props"
