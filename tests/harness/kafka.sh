#!/bin/bash
# A throwaway single-node Apache Kafka broker (KRaft: broker+controller in one
# JVM) on 127.0.0.1, from the jars tests/harness/deps.sh caches.
#
#   kafka.sh start  DIR [--tls CERTDIR] [--sasl USER:PASSWORD] [name=value ...]
#                           format on first use, start, wait, print env
#   kafka.sh stop   DIR     SIGTERM, wait up to 20 s, then SIGKILL
#   kafka.sh kill   DIR     SIGKILL (no clean shutdown; log recovery on next start)
#   kafka.sh pause  DIR     SIGSTOP (broker hangs, connections stay open)
#   kafka.sh resume DIR     SIGCONT
#   kafka.sh status DIR     exit 0 when the process is there
#   kafka.sh env    DIR     print DIR/env
#   kafka.sh topics DIR ARGS...       kafka-topics (org.apache.kafka.tools.TopicCommand)
#                                     with --bootstrap-server set, e.g.
#                                     topics DIR --create --topic t --partitions 6
#   kafka.sh tool   DIR CLASS ARGS... any Kafka tool class from the cached jars
#
# The first start picks two free loopback ports (broker, controller), kept in
# DIR/ports, and formats DIR/data; every later start reuses ports, cluster id
# and data, so a stopped or killed broker comes back on the same address with
# its topics. server.properties is rewritten at every start from the defaults
# below plus the name=value arguments. Topic auto-creation is on (3 partitions).
# Writes DIR/env and prints it:  KAFKA_BROKERS=127.0.0.1:<port>
# Broker log: DIR/broker.log. JVM heap: $KAFKA_HEAP_OPTS (-Xmx512m -Xms256m).
# Other JVM flags: $KAFKA_JVM_OPTS, default -XX:TieredStopAtLevel=1 (C1 only:
# starts ~2 s faster; set KAFKA_JVM_OPTS= (empty) for full JIT, e.g. for
# benchmarks). Class-data sharing archive: see cds_setup (KAFKA_CDS=0: off).
# Readiness: kcat metadata lists the broker, within $KAFKA_START_TIMEOUT (60) s.
# --tls CERTDIR (kept for later starts of DIR): the client listener speaks TLS
# (SSL://), with CERTDIR/server-keystore.pem (PKCS#8 key + certificate chain)
# and CERTDIR/ca.pem, both PEM; clients need security.protocol=ssl and
# ssl.ca.location=CERTDIR/ca.pem. The controller listener stays plaintext.
# --sasl USER:PASSWORD (kept for later starts of DIR): the client listener
# wants SASL PLAIN (SASL_PLAINTEXT, or SASL_SSL with --tls) and knows that one
# user; clients need security.protocol, sasl.mechanisms=PLAIN, sasl.username
# and sasl.password.
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -euo pipefail
PROG=kafka.sh
. "$(dirname "$0")/common.sh"

usage() {
    sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

[ $# -ge 2 ] || usage
cmd=$1
dir=$2
shift 2
case $cmd in start | stop | kill | pause | resume | status | env | topics | tool) ;; *) usage ;; esac

if [ "$cmd" != start ] && [ ! -d "$dir" ]; then
    case $cmd in
    stop | kill) exit 0 ;;
    *) die "$dir does not exist" ;;
    esac
fi
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
if [ "$cmd" = start ] && [ "${1:-}" = --tls ]; then
    [ $# -ge 2 ] || usage
    (cd "$2" && pwd) >"$dir/tls.dir" || die "--tls $2: no such directory"
    shift 2
fi
if [ "$cmd" = start ] && [ "${1:-}" = --sasl ]; then
    [ $# -ge 2 ] || usage
    case $2 in *:*) ;; *) die "--sasl wants USER:PASSWORD" ;; esac
    printf '%s\n' "$2" >"$dir/sasl.user"
    shift 2
fi
# the certificate directory of a TLS broker, empty for plaintext
tls_dir() {
    if [ -f "$dir/tls.dir" ]; then cat "$dir/tls.dir"; fi
}
# USER:PASSWORD of a SASL broker, empty otherwise
sasl_user() {
    if [ -f "$dir/sasl.user" ]; then cat "$dir/sasl.user"; fi
}
pidfile=$dir/kafka.pid
log=$dir/broker.log
props=$dir/server.properties

# pid of this DIR's broker, if it runs (checks the command line, not just the pid)
broker_pid() {
    local pid
    [ -f "$pidfile" ] || return 1
    pid=$(cat "$pidfile")
    pid_alive "$pid" || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "kafka.Kafka $props" || return 1
    echo "$pid"
}

log_tail() {
    if [ -f "$log" ]; then
        echo "---- last lines of $log ----" >&2
        tail -40 "$log" >&2
        echo "----" >&2
    fi
}

write_env() {
    echo "KAFKA_BROKERS=127.0.0.1:$(sed -n 1p "$dir/ports")" >"$dir/env.tmp"
    mv "$dir/env.tmp" "$dir/env"
    cat "$dir/env"
}

write_config() {
    local port cport kv proto=PLAINTEXT tls sasl
    port=$(sed -n 1p "$dir/ports")
    cport=$(sed -n 2p "$dir/ports")
    tls=$(tls_dir)
    sasl=$(sasl_user)
    [ -z "$tls" ] || proto=SSL
    [ -z "$sasl" ] || proto=SASL_$proto # SASL_PLAINTEXT, or SASL_SSL with --tls
    {
        echo "# written by tests/harness/kafka.sh at every start; edits are lost"
        echo "process.roles=broker,controller"
        echo "node.id=1"
        echo "controller.quorum.voters=1@127.0.0.1:$cport"
        echo "listeners=$proto://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport"
        echo "advertised.listeners=$proto://127.0.0.1:$port"
        echo "controller.listener.names=CONTROLLER"
        echo "listener.security.protocol.map=$proto:$proto,CONTROLLER:PLAINTEXT"
        echo "inter.broker.listener.name=$proto"
        if [ -n "$tls" ]; then
            echo "ssl.keystore.type=PEM"
            echo "ssl.keystore.location=$tls/server-keystore.pem"
            echo "ssl.truststore.type=PEM"
            echo "ssl.truststore.location=$tls/ca.pem"
            echo "ssl.client.auth=none"
        fi
        if [ -n "$sasl" ]; then
            # the broker's own user (inter-broker) and the one client user
            echo "sasl.enabled.mechanisms=PLAIN"
            echo "sasl.mechanism.inter.broker.protocol=PLAIN"
            echo "listener.name.$(echo "$proto" | tr 'A-Z' 'a-z').plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username=\"broker\" password=\"broker-pw\" user_broker=\"broker-pw\" user_${sasl%%:*}=\"${sasl#*:}\";"
        fi
        echo "log.dirs=$dir/data"
        echo "num.partitions=3"
        echo "default.replication.factor=1"
        echo "auto.create.topics.enable=true"
        echo "offsets.topic.replication.factor=1"
        echo "offsets.topic.num.partitions=3"
        echo "transaction.state.log.replication.factor=1"
        echo "transaction.state.log.min.isr=1"
        echo "transaction.state.log.num.partitions=3"
        echo "share.coordinator.state.topic.replication.factor=1"
        echo "share.coordinator.state.topic.min.isr=1"
        echo "group.initial.rebalance.delay.ms=0"
        # a SIGKILLed broker re-registers after this; the default 9 s slows fault tests
        echo "broker.session.timeout.ms=3000"
        echo "broker.heartbeat.interval.ms=500"
        echo "num.network.threads=2"
        echo "num.io.threads=4"
        echo "log.cleaner.dedupe.buffer.size=16777216"
        for kv in "$@"; do
            case $kv in
            *=*) echo "$kv" ;;
            *) die "setting '$kv' is not name=value" ;;
            esac
        done
    } >"$props.tmp"
    mv "$props.tmp" "$props"
    cat >"$dir/log4j2.properties" <<'EOF'
# written by tests/harness/kafka.sh: everything to stdout (DIR/broker.log)
status = warn
appender.out.type = Console
appender.out.name = OUT
appender.out.target = SYSTEM_OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = OUT
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.state.name = state.change.logger
logger.state.level = WARN
EOF
    cat >"$dir/log4j2-tools.properties" <<'EOF'
# written by tests/harness/kafka.sh: command-line tools log warnings to stderr
status = warn
appender.err.type = Console
appender.err.name = ERR
appender.err.target = SYSTEM_ERR
appender.err.layout.type = PatternLayout
appender.err.layout.pattern = %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.err.ref = ERR
EOF
}

# Kafka's cluster ids are 16 random bytes, base64url without padding, not
# starting with '-' (what StorageTool random-uuid prints, without a JVM).
new_cluster_id() {
    python3 -c '
import base64, os
while True:
    s = base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=")
    if not s.startswith("-"):
        print(s)
        break'
}

ready() {
    local out tls sasl ssl=()
    tls=$(tls_dir)
    sasl=$(sasl_user)
    [ -z "$tls" ] || ssl=(-X security.protocol=ssl -X "ssl.ca.location=$tls/ca.pem")
    if [ -n "$sasl" ]; then
        local sproto=sasl_plaintext
        [ -z "$tls" ] || sproto=sasl_ssl
        ssl+=(-X "security.protocol=$sproto" -X sasl.mechanisms=PLAIN
            -X "sasl.username=${sasl%%:*}" -X "sasl.password=${sasl#*:}")
    fi
    out=$(kcat -b "127.0.0.1:$1" "${ssl[@]}" -L -m 2 2>/dev/null) || return 1
    printf '%s\n' "$out" | grep -q "broker 1 at 127.0.0.1:$1"
}

do_start() {
    local pid java cp port cport
    if pid=$(broker_pid); then
        grep -q '^State:[[:space:]]*T' "/proc/$pid/status" && note "broker $pid is paused (SIGSTOP); use resume"
        [ $# -eq 0 ] || note "already running; settings $* not applied (use stop first)"
        write_env
        return 0
    fi
    rm -f "$pidfile"
    java=$(find_java) || die "no java >= 17 found; run: sh tests/harness/deps.sh"
    command -v kcat >/dev/null || die "kcat not found; run: sh tests/harness/deps.sh"
    cp=$(kafka_classpath)
    [ -f "$dir/ports" ] || free_ports 2 >"$dir/ports"
    port=$(sed -n 1p "$dir/ports")
    cport=$(sed -n 2p "$dir/ports")
    write_config "$@"
    if [ ! -f "$dir/data/meta.properties" ]; then
        rm -rf "$dir/data" # a half-formatted directory
        [ -f "$dir/cluster.id" ] || new_cluster_id >"$dir/cluster.id"
        if ! "$java" -Xmx256m -XX:TieredStopAtLevel=1 -cp "$cp" -Dlog4j2.configurationFile="$dir/log4j2.properties" \
            kafka.tools.StorageTool format -t "$(cat "$dir/cluster.id")" -c "$props" \
            >"$dir/format.log" 2>&1; then
            cat "$dir/format.log" >&2
            die "kafka-storage format failed"
        fi
    fi
    port_is_free "$port" || die "broker port $port (kept in $dir/ports) is taken by another process"
    port_is_free "$cport" || die "controller port $cport (kept in $dir/ports) is taken by another process"

    cds_setup "$java"

    echo "==== $(date '+%F %T') kafka.sh start" >>"$log"
    # setsid: its own session, so a terminal's Ctrl-C goes to whoever started
    # it, which then stops it in order. Not a group leader here, so setsid
    # execs in place and $! is the JVM's pid.
    # shellcheck disable=SC2086
    setsid "$java" ${KAFKA_HEAP_OPTS:--Xmx512m -Xms256m} -XX:+ExitOnOutOfMemoryError \
        -Djava.awt.headless=true -Dlog4j2.configurationFile="$dir/log4j2.properties" \
        $CDS_OPTS ${KAFKA_JVM_OPTS--XX:TieredStopAtLevel=1} \
        -cp "$cp" kafka.Kafka "$props" </dev/null >>"$log" 2>&1 &
    pid=$!
    echo "$pid" >"$pidfile"

    local timeout=${KAFKA_START_TIMEOUT:-60} t0=$SECONDS
    while ! ready "$port"; do
        if ! pid_alive "$pid"; then
            log_tail
            rm -f "$pidfile"
            die "the Kafka broker exited during startup (log: $log)"
        fi
        if [ $((SECONDS - t0)) -ge "$timeout" ]; then
            log_tail
            kill -KILL "$pid" 2>/dev/null || true
            rm -f "$pidfile"
            die "the Kafka broker was not ready on 127.0.0.1:$port after $timeout s (log: $log)"
        fi
        sleep 0.2
    done
    write_env
}

# Class-data sharing: the JVM maps the broker's classes from an archive
# instead of loading and verifying ~5000 classes, which more than halves the
# start time. There is one archive per java binary in $KAFKA_HOME/cds; while
# none exists, a broker runs with -XX:ArchiveClassesAtExit and writes one to a
# temporary name when it stops cleanly, which do_stop renames into place.
# KAFKA_CDS=0 turns this off.
CDS_OPTS=""
cds_setup() {
    local java=$1 real key jsa tmp
    [ "${KAFKA_CDS:-1}" = 1 ] || return 0
    real=$(readlink -f "$java")
    key=$(printf '%s %s' "$real" "$(stat -c %Y "$real")" | cksum | cut -d' ' -f1)
    mkdir -p "$KAFKA_HOME/cds" 2>/dev/null || return 0
    jsa=$KAFKA_HOME/cds/kafka-$key.jsa
    # temporary archives of brokers that never stopped cleanly
    find "$KAFKA_HOME/cds" -name '*.jsa.tmp.*' -mmin +30 -delete 2>/dev/null || true
    if [ -s "$jsa" ]; then
        CDS_OPTS="-XX:SharedArchiveFile=$jsa -Xlog:cds=off -Xlog:cds+dynamic=off"
        rm -f "$dir/cds.pending"
    else
        tmp=$jsa.tmp.$$.$RANDOM
        CDS_OPTS="-XX:ArchiveClassesAtExit=$tmp -Xlog:cds=off -Xlog:cds+dynamic=off"
        printf '%s\n%s\n' "$tmp" "$jsa" >"$dir/cds.pending"
    fi
}

# after the JVM is gone: adopt the archive it wrote on a clean exit
cds_adopt() {
    local tmp jsa
    [ -f "$dir/cds.pending" ] || return 0
    tmp=$(sed -n 1p "$dir/cds.pending")
    jsa=$(sed -n 2p "$dir/cds.pending")
    rm -f "$dir/cds.pending"
    if [ "${1:-}" = clean ] && [ -s "$tmp" ]; then
        mv -f "$tmp" "$jsa" 2>/dev/null || rm -f "$tmp"
    else
        rm -f "$tmp"
    fi
}

wait_gone() { # wait_gone PID TENTHS: true when it is gone in time
    local i=0
    while pid_alive "$1"; do
        [ $i -lt "$2" ] || return 1
        sleep 0.1
        i=$((i + 1))
    done
}

do_stop() {
    local pid
    if pid=$(broker_pid); then
        kill -TERM "$pid" 2>/dev/null || true
        kill -CONT "$pid" 2>/dev/null || true # a paused broker cannot handle SIGTERM
        if ! wait_gone "$pid" 200; then
            note "broker $pid did not stop in 20 s; SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            wait_gone "$pid" 100 || die "broker $pid survives SIGKILL"
            cds_adopt killed
        fi
        cds_adopt clean
    fi
    rm -f "$pidfile"
}

do_kill() {
    local pid
    if pid=$(broker_pid); then
        kill -KILL "$pid" 2>/dev/null || true
        wait_gone "$pid" 100 || die "broker $pid survives SIGKILL"
        cds_adopt killed
    fi
    rm -f "$pidfile"
}

do_signal() {
    local pid
    pid=$(broker_pid) || die "no broker running in $dir"
    kill "-$1" "$pid"
}

case $cmd in
start) do_start "$@" ;;
stop) do_stop ;;
kill) do_kill ;;
pause) do_signal STOP ;;
resume) do_signal CONT ;;
status) broker_pid >/dev/null ;;
env) cat "$dir/env" ;;
topics | tool)
    java=$(find_java) || die "no java >= 17 found; run: sh tests/harness/deps.sh"
    cp=$(kafka_classpath)
    if [ "$cmd" = topics ]; then
        set -- org.apache.kafka.tools.TopicCommand --bootstrap-server "127.0.0.1:$(sed -n 1p "$dir/ports")" "$@"
    fi
    [ $# -ge 1 ] || usage
    exec "$java" -Xmx256m -XX:TieredStopAtLevel=1 -Dlog4j2.configurationFile="$dir/log4j2-tools.properties" \
        -cp "$cp" "$@"
    ;;
esac
