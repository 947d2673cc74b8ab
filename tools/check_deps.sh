#!/bin/sh
# Module dependency rule (docs/style.md#layout-and-modules): common/ uses libc only, and each I/O
# library is included by exactly one module, so the parsers stay pure.
status=0
check() {
    header=$1
    shift
    found=$(grep -l "#include <$header>" common/*.[ch] cdc/*.[ch] api/*.[ch] 2>/dev/null | sort | tr '\n' ' ')
    allowed=$(echo "$@" | tr ' ' '\n' | sort | tr '\n' ' ')
    for f in $found; do
        case " $allowed " in
        *" $f "*) ;;
        *) echo "lint: $f includes <$header>; only $* may"; status=1 ;;
        esac
    done
}
check libpq-fe.h cdc/pgconn.h cdc/pgconn.c cdc/repl.c cdc/repl_int.h cdc/repl_check.c cdc/watch.c cdc/poll_pg.c cdc/outbox_pg.c cdc/prune_pg.c cdc/reemit_pg.c api/store_pg.c api/pgsession.h api/pgsession.c api/migrate_pg.c
check librdkafka/rdkafka.h cdc/sink_kafka.c cdc/sink_kafka_int.h cdc/eos_kafka.c cdc/kafka_scan.c
check microhttpd.h api/http.c cdc/metrics_http.c
check jansson.h api/orders.c api/http.c api/store_pg.c cdc/outbox_message.c cdc/reemit.c cdc/sink_kafka.c cdc/eos_kafka.c
if grep -l '#include <\(libpq-fe\|librdkafka/rdkafka\|microhttpd\|jansson\)\.h>' common/*.[ch] >/dev/null 2>&1; then
    echo "lint: common/ must not include third-party headers"
    status=1
fi
[ $status -eq 0 ] && echo "lint: module dependencies ok"
exit $status
