# Apache Kafka 4.1.1 (KRaft) from the jars tests/harness/deps.sh caches from
# Maven Central, run with Debian's Java 17, for
# deploy/docker-compose.offline.yml: a stand-in for the registry's
# apache/kafka:4.1.1 with the same interface as far as the compose file uses
# it (KAFKA_* variables as server properties, CLUSTER_ID, the jars in
# /opt/kafka/libs, /opt/kafka/bin/kafka-topics.sh and
# kafka-broker-api-versions.sh, data in /var/lib/kafka/data). kcat is added for
# a cheaper healthcheck than a JVM.
#
# The context holds deploy/offline/ and the cached jars as libs/, so it is
# not the repository: deploy/offline/build.sh sends it as a tar stream.
ARG BASE=debian:bookworm-slim
FROM ${BASE}
ARG DEBIAN_FRONTEND=noninteractive
LABEL org.opencontainers.image.source="orders-cdc"
RUN apt-get update \
 && apt-get install -y --no-install-recommends openjdk-17-jre-headless kcat \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 1000 appuser \
 && useradd --system --uid 1000 --gid appuser --home-dir /opt/kafka --shell /usr/sbin/nologin appuser \
 && install -d -o 1000 -g 1000 /var/lib/kafka/data /opt/kafka/config \
 && install -d /opt/kafka/bin /etc/kafka/docker
COPY deploy/offline/kafka-run.sh /etc/kafka/docker/run
COPY deploy/offline/kafka-run-class.sh /opt/kafka/bin/kafka-run-class.sh
COPY deploy/offline/kafka-log4j2.properties /opt/kafka/config/log4j2.properties
COPY deploy/offline/kafka-tools-log4j2.properties /opt/kafka/config/tools-log4j2.properties
RUN for t in kafka-topics:org.apache.kafka.tools.TopicCommand \
             kafka-broker-api-versions:org.apache.kafka.tools.BrokerApiVersionsCommand \
             kafka-console-consumer:org.apache.kafka.tools.consumer.ConsoleConsumer \
             kafka-storage:kafka.tools.StorageTool; do \
        printf '#!/bin/sh\nexec /opt/kafka/bin/kafka-run-class.sh %s "$@"\n' "${t#*:}" \
            >"/opt/kafka/bin/${t%%:*}.sh"; \
        chmod 755 "/opt/kafka/bin/${t%%:*}.sh"; \
    done
# last: the layer that changes with the jars
COPY libs/ /opt/kafka/libs/
USER 1000:1000
VOLUME /var/lib/kafka/data
EXPOSE 9092
CMD ["/etc/kafka/docker/run"]
