/*
 * cdc-relay's option table and its validation (see options.h). Every value
 * is checked at startup, and an error names where the winning value came
 * from. Must never echo the database URL or a Kafka property value: either
 * may hold a password.
 */
#include "options.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit.h"
#include "cfg_print.h"
#include "reemit.h"
#include "duration.h"
#include "lsn.h"
#include "outbox.h"
#include "xmem.h"

enum opt_kind {
    OPT_STR = 1, /* const char * at offset */
    OPT_DUR,     /* int milliseconds at offset in [min, max] ms; bare number: seconds */
    OPT_DUR_OFF, /* the same, or "off"/"0" for 0 */
    OPT_DUR_MS,  /* int milliseconds at offset in [min, max] ms; bare number: ms */
    OPT_DUR_S64, /* int64_t seconds at offset, rounded up; bare number: seconds */
    OPT_LSN,     /* uint64_t at offset, non-zero X/Y */
    OPT_BOOL,    /* bool at offset (switches) */
    OPT_INT,     /* int at offset, whole number in [min, max] */
    OPT_U64,     /* uint64_t at offset, whole number in [min, max] */
    OPT_LOG_LEVEL,
    OPT_LOG_FORMAT,
    OPT_COLUMN,     /* const char * at offset: a column name, 1..255 bytes */
    OPT_KAFKA,      /* -X NAME=VALUE, kafka.NAME = VALUE */
    OPT_KAFKA_FILE, /* --kafka-config FILE: read by cfg_parse itself */
    OPT_CONFIG,
    OPT_HELP,
    OPT_VERSION,
};

#define OFF(field) offsetof(struct options, field)
#define DAY_MS     86400000L

/*
 * Every cdc-relay option, one row each. --help, the environment, the config
 * file (key = name; kafka.NAME for -X) and --print-config all come from these
 * rows, and tests/integration/test_config_docs.py checks docs/configuration.md
 * against --help and --print-config. To add an option:
 *   1. a row: {name, short, ENV or NULL, METAVAR (NULL: a switch), "default"
 *      or NULL, CFG_* flags, kind, OFF(field), min, max, help};
 *   2. the field in struct options (or struct relay_config, via OFF(relay.x));
 *   3. a case in apply() only if the kind is new, a check in options_parse()
 *      only if it depends on another option;
 *   4. a row in docs/configuration.md (the test fails without it).
 * CFG_CLI_ONLY keeps an option out of the file (one-run settings, like a
 * replay window, must not be repeated by every restart).
 */
static const struct cfg_opt opts[] = {
    {"config", 0, "CDC_CONFIG", "FILE", NULL, CFG_CONFIG, OPT_CONFIG, 0, 0, 0,
     "read options from FILE: \"name = value\" lines, '#'\n"
     "comments, kafka.NAME = VALUE for -X (docs/configuration.md)"},
    {"database-url", 0, "DATABASE_URL", "URL", NULL, CFG_SECRET_DSN | CFG_FILE_FORM, OPT_STR,
     OFF(relay.common.database_url), 0, 0,
     "libpq URI or conninfo of the database holding the outbox\n"
     "(required); --database-url-file PATH, DATABASE_URL_FILE or\n"
     "database-url-file read it from a file (a systemd credential)"},
    {"brokers", 0, "KAFKA_BROKERS", "LIST", "127.0.0.1:9092", 0, OPT_STR, OFF(relay.common.brokers),
     0, 0, "Kafka bootstrap servers"},
    {"slot", 0, "CDC_SLOT", "NAME", "cdc_outbox_slot", 0, OPT_STR, OFF(relay.stream.slot), 0, 0,
     "logical replication slot (created when missing)"},
    {"publication", 0, "CDC_PUBLICATION", "NAME", "cdc_outbox_pub", 0, OPT_STR,
     OFF(relay.stream.publication), 0, 0, "publication (created when missing)"},
    {"table", 0, "CDC_TABLE", "SCHEMA.NAME", "public.outbox", 0, OPT_STR, OFF(table), 0, 0,
     "outbox table"},
    {"topic-template", 0, "CDC_TOPIC_TEMPLATE", "TMPL", "${aggregate_type}.events", 0, OPT_STR,
     OFF(relay.common.topic_template), 0, 0,
     "topic for each event; ${aggregate_type} (or Debezium's\n"
     "${routedByValue}) and ${event_type} are replaced"},
    /* The column mapping (docs/relay.md#the-outbox-table-and-its-columns). */
    {"id-column", 0, "CDC_ID_COLUMN", "COL", "id", 0, OPT_COLUMN, OFF(columns.role[OUTBOX_COL_ID]),
     0, 0,
     "outbox column of the event id (the id header)\n"
     "(Debezium: table.field.event.id)"},
    {"route-column", 0, "CDC_ROUTE_COLUMN", "COL", "aggregate_type", 0, OPT_COLUMN,
     OFF(columns.role[OUTBOX_COL_AGGREGATE_TYPE]), 0, 0,
     "column routed by: ${aggregate_type} in the topic template\n"
     "and the aggregate_type header (Debezium: route.by.field)"},
    {"key-column", 0, "CDC_KEY_COLUMN", "COL", "aggregate_id", 0, OPT_COLUMN,
     OFF(columns.role[OUTBOX_COL_AGGREGATE_ID]), 0, 0,
     "column of the Kafka key, the aggregate id\n"
     "(Debezium: table.field.event.key)"},
    {"type-column", 0, "CDC_TYPE_COLUMN", "COL", "event_type", 0, OPT_COLUMN,
     OFF(columns.role[OUTBOX_COL_EVENT_TYPE]), 0, 0,
     "column of the event_type header and ${event_type}"},
    {"payload-column", 0, "CDC_PAYLOAD_COLUMN", "COL", "payload", 0, OPT_COLUMN,
     OFF(columns.role[OUTBOX_COL_PAYLOAD]), 0, 0,
     "column of the Kafka value: a bytea's bytes, any other\n"
     "type's text form (Debezium: table.field.event.payload)"},
    {"timestamp-column", 0, "CDC_TIMESTAMP_COLUMN", "COL", "created_at", 0, OPT_COLUMN,
     OFF(columns.timestamp), 0, 0,
     "poll mode and audit: the row's time (timestamptz,\n"
     "timestamp, or bigint Unix milliseconds)\n"
     "(Debezium: table.field.event.timestamp)"},
    {"published-column", 0, "CDC_PUBLISHED_COLUMN", "COL", "published_at", 0, OPT_COLUMN,
     OFF(columns.published), 0, 0, "poll mode: the column marked when the row was delivered"},
    {"traceparent-column", 0, "CDC_TRACEPARENT_COLUMN", "COL", "traceparent", 0, OPT_COLUMN,
     OFF(columns.traceparent), 0, 0,
     "its value becomes the traceparent header (a W3C\n"
     "traceparent, or Debezium's serialized tracingspancontext);\n"
     "NULL: no header. The default is optional (a table without\n"
     "it sends none); one named here must exist; none: off\n"
     "(Debezium: tracing.span.context.field)"},
    {"header-columns", 0, "CDC_HEADER_COLUMNS", "LIST", NULL, 0, OPT_STR, OFF(header_columns), 0, 0,
     "more columns sent as headers: COL[=HDR],... (HDR, the\n"
     "header's name, defaults to COL's); NULL: a null value\n"
     "(Debezium: table.fields.additional.placement=COL:header:HDR)"},
    {"source", 0, "CDC_SOURCE", "table|messages", "table", 0, OPT_STR, OFF(source), 0, 0,
     "table: inserts into the outbox table; messages: also\n"
     "transactional pg_logical_emit_message events"},
    {"message-prefix", 0, "CDC_MESSAGE_PREFIX", "P", "outbox", 0, OPT_STR,
     OFF(relay.stream.message_prefix), 0, 0, "prefix of those messages"},
    {"heartbeat-interval", 0, "CDC_HEARTBEAT_INTERVAL", "DUR", "off", 0, OPT_DUR_OFF,
     OFF(relay.stream.heartbeat_interval_ms), 1, DAY_MS,
     "write a logical message (prefix cdc-relay-heartbeat) this\n"
     "often so a silent database still lets the slot advance"},
    {"dead-letter-topic", 0, "CDC_DEAD_LETTER_TOPIC", "NAME", NULL, 0, OPT_STR,
     OFF(relay.stream.dead_letter_topic), 0, 0,
     "send events that can never be delivered as they are (NULL\n"
     "aggregate_id, invalid topic name, too large, authorization,\n"
     "unknown topic) to NAME with dl_* headers instead of\n"
     "stopping; too-large ones without the value; unset: stop, exit 1"},
    {"no-create-slot", 0, "CDC_NO_CREATE_SLOT", NULL, "false", 0, OPT_BOOL, OFF(no_create_slot), 0,
     0, "fail if the slot is missing instead of creating it"},
    {"no-create-publication", 0, "CDC_NO_CREATE_PUBLICATION", NULL, "false", 0, OPT_BOOL,
     OFF(no_create_publication), 0, 0, "fail if the publication is missing instead of creating it"},
    {"no-failover-slot", 0, "CDC_NO_FAILOVER_SLOT", NULL, "false", 0, OPT_BOOL,
     OFF(no_failover_slot), 0, 0,
     "create the slot without FAILOVER (PostgreSQL 17+ creates it\n"
     "with it, so standbys with sync_replication_slots keep a copy)"},
    {"require-failover-ready", 0, "CDC_REQUIRE_FAILOVER_READY", NULL, "false", 0, OPT_BOOL,
     OFF(relay.stream.require_failover_ready), 0, 0,
     "PostgreSQL 17+: exit 1 at the start when the slot is not a\n"
     "failover slot or the primary shows a standby's copy could\n"
     "not survive a promotion (default: a warning)"},
    {"standby", 0, "CDC_STANDBY", NULL, "false", 0, OPT_BOOL, OFF(relay.stream.standby), 0, 0,
     "one of a pair of relays on the same slot: while another\n"
     "session holds the slot, wait for it without limit (polled\n"
     "every second) and take over once it is free, instead of\n"
     "exit 4 after 15 s; the slot's position wins over the\n"
     "state file's (docs/operations.md)"},
    {"start-lsn", 0, NULL, "X/Y", NULL, CFG_CLI_ONLY, OPT_LSN, OFF(relay.stream.start_lsn), 0, 0,
     "relay only transactions whose commit LSN is >= X/Y;\n"
     "refused if older than the slot's confirmed_flush_lsn"},
    {"end-lsn", 0, NULL, "X/Y", NULL, CFG_CLI_ONLY, OPT_LSN, OFF(relay.stream.end_lsn), 0, 0,
     "stop (exit 0) after the last transaction whose commit LSN\n"
     "is <= X/Y"},
    {"status-interval", 0, "CDC_STATUS_INTERVAL", "DUR", "10s", 0, OPT_DUR,
     OFF(relay.stream.status_interval_ms), 1, DAY_MS,
     "standby status update cadence; also how often, while\n"
     "there is a new position to confirm, the relay checks that\n"
     "the table is still in the publication (exit 1 if not)"},
    {"server-timeout", 0, "CDC_SERVER_TIMEOUT", "DUR", "60s", 0, OPT_DUR,
     OFF(relay.common.server_timeout_ms), 1, DAY_MS,
     "reconnect when the server sent nothing this long; a probe\n"
     "is sent at half of it"},
    {"shutdown-timeout", 0, "CDC_SHUTDOWN_TIMEOUT", "DUR", "30s", 0, OPT_DUR,
     OFF(relay.common.shutdown_timeout_ms), 1, DAY_MS,
     "on SIGTERM/SIGINT, wait this long for deliveries"},
    {"reconnect-max", 0, "CDC_RECONNECT_MAX", "DUR", "30s", 0, OPT_DUR,
     OFF(relay.common.reconnect_max_ms), 1, DAY_MS, "cap of the reconnect backoff"},
    {"state-file", 0, "CDC_STATE_FILE", "PATH", "cdc-relay.<slot>.state", 0, OPT_STR,
     OFF(state_file), 0, 0,
     "where the last delivered position is saved (written\n"
     "atomically before Postgres is told) and resumed from;\n"
     "the default is in the working directory"},
    {"no-state-file", 0, "CDC_NO_STATE_FILE", NULL, "false", 0, OPT_BOOL, OFF(no_state_file), 0, 0,
     "keep no state file (resume from the slot alone)"},
    {"replay-window", 0, "CDC_REPLAY_WINDOW", "DUR", "0", 0, OPT_DUR_S64,
     OFF(relay.stream.replay_window_s), 0, DURATION_MAX_MS,
     "hold the slot's confirmed position back by DUR (15m, 2h)\n"
     "so that window can be replayed with --start-lsn;\n"
     "costs that much WAL on the server"},
    {"mode", 0, "CDC_MODE", "stream|poll", "stream", 0, OPT_STR, OFF(mode), 0, 0,
     "stream: read the WAL through the slot; poll: the polling\n"
     "outbox (SELECT ... FOR UPDATE SKIP LOCKED, then UPDATE\n"
     "published_at), for databases without logical replication;\n"
     "needs the published_at column (sql/0004)"},
    {"poll-interval", 0, "CDC_POLL_INTERVAL", "DUR", "1s", 0, OPT_DUR, OFF(relay.poll.interval_ms),
     1, DAY_MS, "poll mode: wait after a poll that found nothing"},
    {"poll-batch", 0, "CDC_POLL_BATCH", "N", "500", 0, OPT_INT, OFF(relay.poll.batch), 1, 100000,
     "poll mode: rows per batch (one transaction)"},
    {"poll-batch-timeout", 0, "CDC_POLL_BATCH_TIMEOUT", "DUR", "30s", 0, OPT_DUR,
     OFF(relay.poll.batch_timeout_ms), 1, DAY_MS,
     "poll mode: a batch Kafka has not acknowledged by then is\n"
     "rolled back and sent again"},
    {"until-empty", 0, NULL, NULL, NULL, CFG_CLI_ONLY, OPT_BOOL, OFF(relay.poll.until_empty), 0, 0,
     "poll mode: exit 0 at the first poll that finds no\nunpublished row"},
    {"exactly-once", 0, "CDC_EXACTLY_ONCE", NULL, "false", 0, OPT_BOOL,
     OFF(relay.stream.exactly_once), 0, 0,
     "Kafka transactions aligned to Postgres transactions, with a\n"
     "checkpoint in the same transaction: read_committed\n"
     "consumers see each event once (docs/guarantees.md)"},
    {"checkpoint-topic", 0, "CDC_CHECKPOINT_TOPIC", "NAME", "cdc-relay.checkpoints", 0, OPT_STR,
     OFF(relay.stream.checkpoint_topic), 0, 0,
     "exactly-once: compacted topic of the checkpoints (created\n"
     "when missing)"},
    {"txn-max-events", 0, "CDC_TXN_MAX_EVENTS", "N", "10000", 0, OPT_U64,
     OFF(relay.stream.txn_max_events), 1, 100000000,
     "exactly-once: close a Kafka transaction after this many\n"
     "events (between source transactions, never inside one)"},
    {"txn-max-ms", 0, "CDC_TXN_MAX_MS", "DUR", "100ms", 0, OPT_DUR_MS, OFF(relay.stream.txn_max_ms),
     1, 100000000,
     "exactly-once: ... or once it is this old (a bare number is\n"
     "milliseconds)"},
    {"kafka", 'X', "CDC_KAFKA_", "NAME=VALUE", NULL, CFG_KAFKA, OPT_KAFKA, 0, 0, 0,
     "set any librdkafka property (repeatable), e.g.\n"
     "-X compression.type=lz4 or -Xcompression.type=lz4; applied\n"
     "after the relay's defaults (enable.idempotence=true acks=all\n"
     "message.timeout.ms=0 partitioner=murmur2_random linger.ms=5,\n"
     "docs/relay.md); -X file=PATH reads a properties file as\n"
     "--kafka-config does. Each is checked by librdkafka at start\n"
     "and by --print-config: an unknown or invalid one exits 2.\n"
     "Also from the environment, CDC_KAFKA_<NAME>=VALUE (NAME\n"
     "upper-case, '.' as _, '_' as __, '-' as ___, e.g.\n"
     "CDC_KAFKA_SASL_PASSWORD), or CDC_KAFKA_<NAME>_FILE=PATH to\n"
     "read the value from a file; after the files, before -X"},
    {"kafka-config", 0, "CDC_KAFKA_CONFIG", "FILE", NULL, CFG_KAFKA_FILE, OPT_KAFKA_FILE, 0, 0, 0,
     "librdkafka properties file (kcat's format: name=value\n"
     "lines, '#' comments), applied before -X flags"},
    {"log-level", 0, "LOG_LEVEL", "LEVEL", "info", 0, OPT_LOG_LEVEL, 0, 0, 0,
     "error, warn, info, debug"},
    {"log-format", 0, "LOG_FORMAT", "FORMAT", "text", 0, OPT_LOG_FORMAT, 0, 0, 0,
     "text, or json (one object a line: ts, level, msg, and\n"
     "lsn and event_id on event lines)"},
    /* 8491: loopback, a port of the relay's own: the exporters' 9100-9999 range
     * is all allocated (9187: postgres_exporter), docs/observability.md. */
    {"metrics-listen", 0, "CDC_METRICS_LISTEN", "ADDR", "127.0.0.1:8491", 0, OPT_STR,
     OFF(metrics_listen), 0, 0,
     "serve GET /metrics (Prometheus), /healthz and /readyz on\n"
     "HOST:PORT (port 0: any free one, logged as 'metrics\n"
     "listening addr=HOST:PORT'); none: no listener"},
    /* cdc-relay audit (docs/operations.md#auditing-a-time-range) */
    {"since", 0, NULL, "TIME", NULL, CFG_CLI_ONLY, OPT_STR, OFF(since), 0, 0,
     "audit, reemit: the range's start, by --timestamp-column:\n"
     "an ISO 8601 time (2026-12-05T10:00:00Z), a date, now, or\n"
     "a duration ago (2h) (required by audit)"},
    {"until", 0, NULL, "TIME", "now", CFG_CLI_ONLY, OPT_STR, OFF(until), 0, 0,
     "audit, reemit: the range's end (excluded); leave the relay\n"
     "time to deliver, e.g. --until 5m"},
    {"topics", 0, NULL, "LIST", NULL, CFG_CLI_ONLY, OPT_STR, OFF(audit_topics), 0, 0,
     "audit: read these topics (comma-separated) for the rows'\n"
     "events, instead of the ones --topic-template makes"},
    {"clock-skew", 0, "CDC_AUDIT_CLOCK_SKEW", "DUR", "5m", 0, OPT_DUR, OFF(clock_skew_ms), 0,
     DAY_MS,
     "audit: read each topic from this long before the range's\n"
     "start (clocks of the database and the relay differ)"},
    /* cdc-relay prune (docs/operations.md#pruning-the-outbox) */
    {"older-than", 0, "CDC_PRUNE_OLDER_THAN", "DUR", NULL, 0, OPT_DUR_S64, OFF(prune.older_than_s),
     0, DURATION_MAX_MS,
     "prune: remove delivered rows whose --timestamp-column is\n"
     "older than DUR (7d, 36h) (required by prune)"},
    {"batch-size", 0, "CDC_PRUNE_BATCH_SIZE", "N", "1000", 0, OPT_INT, OFF(prune.batch_size), 1,
     100000, "prune: rows per DELETE, each its own transaction"},
    {"batch-pause", 0, "CDC_PRUNE_BATCH_PAUSE", "DUR", "0", 0, OPT_DUR_MS,
     OFF(prune.batch_pause_ms), 0, 600000,
     "prune: sleep between batches (a bare number is\nmilliseconds)"},
    {"max-duration", 0, "CDC_PRUNE_MAX_DURATION", "DUR", "off", 0, OPT_DUR_OFF,
     OFF(prune.max_duration_ms), 1, DAY_MS,
     "prune: start no batch or partition after DUR of deleting\n"
     "(exit 0; the next run goes on)"},
    {"confirm-timeout", 0, "CDC_PRUNE_CONFIRM_TIMEOUT", "DUR", "60s", 0, OPT_DUR,
     OFF(prune.wait_ms), 0, DAY_MS,
     "prune: wait this long for the slot (or the state file) to\n"
     "confirm the WAL position prune started at; exit 5 if not"},
    {"lock-timeout", 0, "CDC_PRUNE_LOCK_TIMEOUT", "DUR", "2s", 0, OPT_DUR,
     OFF(prune.lock_timeout_ms), 1, 600000,
     "prune, partitioned outbox: wait this long for a\n"
     "partition's locks, else keep it for the next run"},
    {"keep-detached", 0, "CDC_PRUNE_KEEP_DETACHED", NULL, "false", 0, OPT_BOOL,
     OFF(prune.keep_detached), 0, 0,
     "prune, partitioned outbox: detach old partitions, do not\ndrop them"},
    {"dry-run", 0, NULL, NULL, NULL, CFG_CLI_ONLY, OPT_BOOL, OFF(prune.dry_run), 0, 0,
     "prune: count what would be removed, remove nothing"},
    /* cdc-relay reemit (docs/operations.md#re-emitting-events); --since and
     * --until choose a time range there too */
    {"ids", 0, NULL, "A..B", NULL, CFG_CLI_ONLY, OPT_STR, OFF(reemit.ids), 0, 0,
     "reemit: the rows whose id column is in [A, B] (the\n"
     "column type's order); A alone: that one row"},
    {"lsn", 0, NULL, "X..Y", NULL, CFG_CLI_ONLY, OPT_STR, OFF(reemit.lsn), 0, 0,
     "reemit: refused with how an LSN range is replayed\n"
     "(--start-lsn/--end-lsn, docs/operations.md)"},
    {"wait", 0, NULL, NULL, NULL, CFG_CLI_ONLY, OPT_BOOL, OFF(reemit.wait), 0, 0,
     "reemit: wait until the relay has delivered the request's\n"
     "events (exit 0) or --wait-timeout passes (exit 4)"},
    {"wait-timeout", 0, "CDC_REEMIT_WAIT_TIMEOUT", "DUR", "1h", 0, OPT_DUR,
     OFF(reemit.wait_timeout_ms), 1000, 7 * DAY_MS, "reemit --wait: how long to wait"},
    {"print-config", 0, NULL, NULL, NULL, CFG_CLI_ONLY, OPT_BOOL, OFF(print_config), 0, 0,
     "print the effective configuration (each value and where it\n"
     "came from, secrets masked) and exit 0 without connecting"},
    {"help", 'h', NULL, NULL, NULL, CFG_ACTION, OPT_HELP, 0, 0, 0, "show this help and exit"},
    {"version", 'V', NULL, NULL, NULL, CFG_ACTION, OPT_VERSION, 0, 0, 0,
     "show the version and the libraries' versions and exit"},
};

#define OPT_COUNT (sizeof(opts) / sizeof(opts[0]))

/* Parses a duration for a row of a duration kind; checks [min, max] ms. */
static int parse_dur(const struct cfg_opt *opt, const char *val, int64_t *out_ms)
{
    enum duration_unit bare = opt->kind == OPT_DUR_MS ? DURATION_BARE_MS : DURATION_BARE_S;

    if (!duration_parse_ms(val, bare, out_ms) || *out_ms < opt->min || *out_ms > opt->max)
        return -1;
    return 0;
}

/* "is not a duration in [1ms, 1d] (...)": the range and what a bare number means. */
static int dur_error(const struct cfg_opt *opt, const char *label, const char *val, bool off,
                     char *errbuf, size_t errlen)
{
    char lo[DURATION_STR_MAX], hi[DURATION_STR_MAX];

    return cfg_seterr(errbuf, errlen,
                      "%s: \"%.64s\" is not %sa duration in [%s, %s] (500ms, 10s, 15m, 2h, 1d; a "
                      "bare number is %s)",
                      label, val, off ? "off or " : "",
                      duration_format_ms(opt->min, lo, sizeof(lo)),
                      duration_format_ms(opt->max, hi, sizeof(hi)),
                      opt->kind == OPT_DUR_MS ? "milliseconds" : "seconds");
}

/* Validates val for opt and stores it; label says where val came from. */
static int apply(struct options *o, const struct cfg_opt *opt, const char *label, const char *val,
                 char *errbuf, size_t errlen)
{
    void *field = (char *)o + opt->offset;
    int64_t ms;
    bool b;

    switch ((enum opt_kind)opt->kind) {
    case OPT_STR:
        *(const char **)field = val;
        return 0;
    case OPT_DUR:
    case OPT_DUR_OFF:
    case OPT_DUR_MS:
        if (opt->kind == OPT_DUR_OFF && (strcmp(val, "off") == 0 || strcmp(val, "0") == 0)) {
            *(int *)field = 0;
            return 0;
        }
        if (parse_dur(opt, val, &ms) != 0)
            return dur_error(opt, label, val, opt->kind == OPT_DUR_OFF, errbuf, errlen);
        *(int *)field = (int)ms;
        return 0;
    case OPT_DUR_S64:
        if (parse_dur(opt, val, &ms) != 0)
            return dur_error(opt, label, val, false, errbuf, errlen);
        *(int64_t *)field = (ms + 999) / 1000;
        return 0;
    case OPT_LSN:
        if (!lsn_parse(val, (uint64_t *)field) || *(uint64_t *)field == 0)
            return cfg_seterr(errbuf, errlen,
                              "%s: \"%.64s\" is not a non-zero LSN of the form X/Y (hex)", label,
                              val);
        return 0;
    case OPT_BOOL:
        /* cfg normalised switches to true/false already. */
        if (!cfg_parse_bool(val, &b))
            return cfg_seterr(errbuf, errlen, "%s: \"%.64s\" is not true or false", label, val);
        *(bool *)field = b;
        return 0;
    case OPT_INT:
    case OPT_U64: {
        char *end;
        long long v;

        errno = 0;
        v = strtoll(val, &end, 10);
        if (errno != 0 || end == val || *end != '\0' || v < opt->min || v > opt->max)
            return cfg_seterr(errbuf, errlen, "%s: \"%.64s\" is not a whole number in [%ld, %ld]",
                              label, val, opt->min, opt->max);
        if (opt->kind == OPT_INT)
            *(int *)field = (int)v;
        else
            *(uint64_t *)field = (uint64_t)v;
        return 0;
    }
    case OPT_LOG_LEVEL:
        if (!log_level_parse(val, &o->log_level))
            return cfg_seterr(errbuf, errlen,
                              "%s: \"%.64s\" is not one of error, warn, info, debug", label, val);
        return 0;
    case OPT_LOG_FORMAT:
        if (!log_format_parse(val, &o->log_format))
            return cfg_seterr(errbuf, errlen, "%s: \"%.64s\" is not one of text, json", label, val);
        return 0;
    case OPT_COLUMN:
        if (*val == '\0' || strlen(val) > 255)
            return cfg_seterr(errbuf, errlen, "%s: a column name is 1 to 255 bytes", label);
        *(const char **)field = val;
        return 0;
    case OPT_KAFKA:
    case OPT_KAFKA_FILE:
    case OPT_CONFIG:
    case OPT_HELP:
    case OPT_VERSION:
        break;
    }
    return 0;
}

static int apply_kafka(struct options *o, char *errbuf, size_t errlen)
{
    for (size_t i = 0; i < o->set.nitems; i++) {
        const struct cfg_item *it = &o->set.items[i];

        if (!(it->opt->flags & CFG_KAFKA))
            continue;
        if (o->relay.common.nkafka_props == OPTIONS_MAX_KAFKA_PROPS)
            return cfg_seterr(errbuf, errlen, "more than %d Kafka properties",
                              OPTIONS_MAX_KAFKA_PROPS);
        /* File lines come before flags (cfg sorts by source), and librdkafka
         * keeps the last value set: a flag beats the file. */
        o->props[o->relay.common.nkafka_props].name = xstrndup(it->key, it->key_len);
        o->props[o->relay.common.nkafka_props].value = it->value;
        o->relay.common.nkafka_props++;
    }
    return 0;
}

static const struct cfg_opt *row(const char *name)
{
    for (size_t i = 0; i < OPT_COUNT; i++) {
        if (strcmp(opts[i].name, name) == 0)
            return &opts[i];
    }
    return NULL;
}

/* Whether any of the names was given as a flag (the environment and the
 * shared config file may hold a command's settings, which others ignore). */
static bool flag_given(struct options *o, const char *const *names)
{
    for (; *names != NULL; names++) {
        const struct cfg_item *it = cfg_get(&o->set, row(*names));

        if (it != NULL && it->source == CFG_SOURCE_FLAG)
            return true;
    }
    return false;
}

static int check_prune(struct options *o, char *errbuf, size_t errlen)
{
    static const char *const prune_only[] = {
        "older-than",   "batch-size",    "batch-pause", "max-duration", "confirm-timeout",
        "lock-timeout", "keep-detached", "dry-run",     NULL,
    };

    if (o->command != OPTIONS_CMD_PRUNE) {
        if (flag_given(o, prune_only))
            return cfg_seterr(errbuf, errlen,
                              "--older-than, --batch-size, --batch-pause, --max-duration, "
                              "--confirm-timeout, --lock-timeout, --keep-detached and --dry-run "
                              "are for "
                              "the prune command: cdc-relay prune --older-than ...");
        return 0;
    }
    if (cfg_get(&o->set, row("older-than")) == NULL)
        return cfg_seterr(errbuf, errlen, "prune needs --older-than (7d, 36h, ...)");
    return 0;
}

/* cdc-relay reemit: one range, of ids or of time; not an LSN range, not in
 * poll mode. */
static int reemit_check(struct options *o, char *errbuf, size_t errlen)
{
    int ranges = (o->reemit.ids != NULL) + (o->since != NULL) + (o->reemit.lsn != NULL);

    if (ranges != 1)
        return cfg_seterr(errbuf, errlen,
                          "reemit needs one range: --ids A..B, or --since T [--until T]");
    if (o->reemit.lsn != NULL)
        return cfg_seterr(
            errbuf, errlen,
            "reemit --lsn: an LSN range is a range of the WAL, not of the outbox table, and is "
            "replayed from the slot by a relay run with --start-lsn X --end-lsn Y while the WAL "
            "is still there (--replay-window; docs/operations.md, \"Replay from a saved LSN\"); "
            "its events carry their original lsn header and no replayed header. To re-send "
            "rows by identity use --ids or --since/--until");
    if (o->audit_topics != NULL)
        return cfg_seterr(errbuf, errlen, "--topics is for the audit command");
    if (cfg_get(&o->set, row("until")) != NULL && o->since == NULL)
        return cfg_seterr(errbuf, errlen, "--until goes with --since");
    if (o->relay.poll_mode)
        return cfg_seterr(
            errbuf, errlen,
            "reemit serves requests through the replication stream; in --mode poll a row is sent "
            "again when its published column is NULL again (UPDATE ... SET published_at = NULL "
            "WHERE ...), without a replayed header (docs/operations.md#re-emitting-events)");
    if (o->reemit.ids != NULL) {
        if (!reemit_parse_ids(o->reemit.ids, &o->reemit.req))
            return cfg_seterr(errbuf, errlen,
                              "--ids: \"%.64s\" is not A..B or A (bounds of 1 to %d bytes)",
                              o->reemit.ids, REEMIT_ID_MAX - 1);
        return 0;
    }
    o->reemit.req.kind = REEMIT_TIME;
    if (!audit_parse_time(o->since, o->now_us, &o->reemit.req.since_us))
        return cfg_seterr(errbuf, errlen,
                          "--since: \"%.64s\" is not a time (2026-12-05T10:00:00Z, 2026-12-05, "
                          "now, or a duration ago such as 2h)",
                          o->since);
    if (!audit_parse_time(o->until, o->now_us, &o->reemit.req.until_us))
        return cfg_seterr(errbuf, errlen,
                          "--until: \"%.64s\" is not a time (2026-12-05T10:00:00Z, 2026-12-05, "
                          "now, or a duration ago such as 5m)",
                          o->until);
    if (o->reemit.req.until_us <= o->reemit.req.since_us)
        return cfg_seterr(errbuf, errlen, "--until is not after --since");
    return 0;
}

/* Checks that need more than one option, or a default computed from another. */
static int check_combined(struct options *o, char *errbuf, size_t errlen)
{
    char label[CFG_ERR_MAX];
    const struct cfg_opt *r;
    const char *dot;
    size_t slen;

    if (o->relay.stream.start_lsn != 0 && o->relay.stream.end_lsn != 0 &&
        o->relay.stream.end_lsn < o->relay.stream.start_lsn)
        return cfg_seterr(errbuf, errlen, "--end-lsn is before --start-lsn");
    r = row("table");
    cfg_label(cfg_get(&o->set, r), r, label, sizeof(label));
    dot = strchr(o->table, '.');
    slen = dot != NULL ? (size_t)(dot - o->table) : strlen("public");
    if (dot == NULL) {
        memcpy(o->table_schema, "public", slen + 1);
        dot = o->table - 1;
    } else if (slen < sizeof(o->table_schema)) {
        memcpy(o->table_schema, o->table, slen);
        o->table_schema[slen] = '\0';
    }
    if (slen == 0 || slen >= sizeof(o->table_schema) || dot[1] == '\0' ||
        strchr(dot + 1, '.') != NULL || strlen(dot + 1) >= sizeof(o->table_name))
        return cfg_seterr(errbuf, errlen, "%s: \"%.64s\" is not SCHEMA.NAME", label, o->table);
    memcpy(o->table_name, dot + 1, strlen(dot + 1) + 1);
    o->relay.common.table_schema = o->table_schema;
    o->relay.common.table_name = o->table_name;

    r = row("source");
    if (strcmp(o->source, "messages") == 0)
        o->relay.stream.source_messages = true;
    else if (strcmp(o->source, "table") != 0)
        return cfg_seterr(errbuf, errlen, "%s: \"%.64s\" is not table or messages",
                          cfg_label(cfg_get(&o->set, r), r, label, sizeof(label)), o->source);
    r = row("mode");
    if (strcmp(o->mode, "poll") == 0)
        o->relay.poll_mode = true;
    else if (strcmp(o->mode, "stream") != 0)
        return cfg_seterr(errbuf, errlen, "%s: \"%.64s\" is not stream or poll",
                          cfg_label(cfg_get(&o->set, r), r, label, sizeof(label)), o->mode);
    /* Options poll mode would silently ignore are refused instead. */
    if (o->relay.poll_mode &&
        (o->relay.stream.start_lsn != 0 || o->relay.stream.end_lsn != 0 ||
         o->relay.stream.source_messages || o->relay.stream.heartbeat_interval_ms > 0 ||
         o->relay.stream.replay_window_s > 0))
        return cfg_seterr(errbuf, errlen,
                          "--start-lsn, --end-lsn, --source messages, --heartbeat-interval and "
                          "--replay-window need --mode stream");
    if (o->relay.poll_mode && o->relay.stream.standby)
        return cfg_seterr(errbuf, errlen,
                          "--standby needs --mode stream (poll mode relays share the table: run "
                          "them side by side)");
    if (!o->relay.poll_mode && o->relay.poll.until_empty)
        return cfg_seterr(errbuf, errlen, "--until-empty needs --mode poll");
    r = row("checkpoint-topic");
    if (!outbox_topic_valid(o->relay.stream.checkpoint_topic,
                            strlen(o->relay.stream.checkpoint_topic)))
        return cfg_seterr(errbuf, errlen, "%s: \"%.64s\" is not a valid Kafka topic name",
                          cfg_label(cfg_get(&o->set, r), r, label, sizeof(label)),
                          o->relay.stream.checkpoint_topic);
    r = row("dead-letter-topic");
    if (o->relay.stream.dead_letter_topic != NULL &&
        !outbox_topic_valid(o->relay.stream.dead_letter_topic,
                            strlen(o->relay.stream.dead_letter_topic)))
        return cfg_seterr(errbuf, errlen, "%s: \"%.64s\" is not a valid Kafka topic name",
                          cfg_label(cfg_get(&o->set, r), r, label, sizeof(label)),
                          o->relay.stream.dead_letter_topic);
    if (strcmp(o->columns.traceparent, "none") == 0)
        o->columns.traceparent = NULL;
    else
        o->columns.traceparent_required = cfg_get(&o->set, row("traceparent-column")) != NULL;
    if (o->header_columns != NULL) {
        const char *why = NULL;

        r = row("header-columns");
        if (strlen(o->header_columns) >= sizeof(o->header_spec) ||
            !outbox_header_columns_parse(
                memcpy(o->header_spec, o->header_columns, strlen(o->header_columns) + 1),
                &o->columns, &why))
            return cfg_seterr(errbuf, errlen, "%s: \"%.64s\": %s",
                              cfg_label(cfg_get(&o->set, r), r, label, sizeof(label)),
                              o->header_columns, why != NULL ? why : "longer than 4095 bytes");
    }
    if (o->command == OPTIONS_CMD_AUDIT) {
        if (o->since == NULL)
            return cfg_seterr(errbuf, errlen, "audit needs --since");
        if (!audit_parse_time(o->since, o->now_us, &o->audit.since_us))
            return cfg_seterr(errbuf, errlen,
                              "--since: \"%.64s\" is not a time (2026-12-05T10:00:00Z, "
                              "2026-12-05, now, or a duration ago such as 2h)",
                              o->since);
        if (!audit_parse_time(o->until, o->now_us, &o->audit.until_us))
            return cfg_seterr(errbuf, errlen,
                              "--until: \"%.64s\" is not a time (2026-12-05T10:00:00Z, "
                              "2026-12-05, now, or a duration ago such as 5m)",
                              o->until);
        if (o->audit.until_us <= o->audit.since_us)
            return cfg_seterr(errbuf, errlen, "--until is not after --since");
        if (o->relay.stream.source_messages || o->relay.poll_mode)
            return cfg_seterr(errbuf, errlen,
                              "audit reads the outbox table: --source messages and --mode poll "
                              "do not apply");
    } else if (o->command == OPTIONS_CMD_REEMIT) {
        if (reemit_check(o, errbuf, errlen) != 0)
            return -1;
    } else if (o->since != NULL || o->audit_topics != NULL ||
               cfg_get(&o->set, row("until")) != NULL ||
               (cfg_get(&o->set, row("clock-skew")) != NULL &&
                cfg_get(&o->set, row("clock-skew"))->source == CFG_SOURCE_FLAG)) {
        /* (a clock skew in the shared file or environment is the audit's
         * setting, which the daemon ignores) */
        return cfg_seterr(errbuf, errlen,
                          "--since, --until, --topics and --clock-skew are for the audit "
                          "command: cdc-relay audit --since ...");
    }
    if (check_prune(o, errbuf, errlen) != 0)
        return -1;
    if (o->command != OPTIONS_CMD_REEMIT &&
        (o->reemit.ids != NULL || o->reemit.lsn != NULL || o->reemit.wait ||
         (cfg_get(&o->set, row("wait-timeout")) != NULL &&
          cfg_get(&o->set, row("wait-timeout"))->source == CFG_SOURCE_FLAG)))
        return cfg_seterr(errbuf, errlen,
                          "--ids, --lsn, --wait and --wait-timeout are for the reemit command: "
                          "cdc-relay reemit --ids A..B");
    if (strcmp(o->relay.stream.message_prefix, REEMIT_PREFIX) == 0)
        return cfg_seterr(errbuf, errlen,
                          "--message-prefix: \"%s\" is the prefix of re-emit requests; choose "
                          "another",
                          REEMIT_PREFIX);
    if (strcmp(o->metrics_listen, "none") == 0)
        o->metrics_listen = NULL;
    if (*o->relay.stream.message_prefix == '\0')
        return cfg_seterr(errbuf, errlen, "--message-prefix must not be empty");
    o->relay.stream.create_slot = !o->no_create_slot;
    o->relay.stream.create_publication = !o->no_create_publication;
    o->relay.stream.failover_slot = !o->no_failover_slot;
    if (!o->no_state_file) {
        if (cfg_get(&o->set, row("state-file")) == NULL) {
            snprintf(o->default_state, sizeof(o->default_state), "cdc-relay.%s.state",
                     o->relay.stream.slot);
            o->state_file = o->default_state;
            cfg_set_derived(&o->set, row("state-file"), o->default_state);
        }
        o->relay.stream.state_file = o->state_file;
    }
    return 0;
}

static int64_t options_now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int options_parse(struct options *o, int argc, char **argv, options_getenv_fn getenv_fn,
                  char *const *envp, char *errbuf, size_t errlen)
{
    memset(o, 0, sizeof(*o));
    /* cdc-relay audit ...: a command, then the same options */
    if (argc > 1 && strcmp(argv[1], "audit") == 0) {
        o->command = OPTIONS_CMD_AUDIT;
        argc--;
        argv++;
    } else if (argc > 1 && strcmp(argv[1], "prune") == 0) {
        o->command = OPTIONS_CMD_PRUNE;
        argc--;
        argv++;
    } else if (argc > 1 && strcmp(argv[1], "reemit") == 0) {
        o->command = OPTIONS_CMD_REEMIT;
        argc--;
        argv++;
    }
    o->now_us = options_now_us();
    o->relay.common.connect_timeout_s = 10;
    o->relay.common.kafka_props = o->props;
    o->relay.common.stop.fd = -1;
    outbox_columns_default(&o->columns);
    o->relay.common.columns = &o->columns;
    o->log_level = LOG_LEVEL_INFO;
    o->log_format = LOG_FORMAT_TEXT;

    if (cfg_parse(&o->set, opts, OPT_COUNT, argc, argv, getenv_fn, envp, errbuf, errlen) != 0)
        return -1;
    if (o->set.action != NULL) {
        o->action = o->set.action->kind == OPT_HELP ? OPTIONS_HELP : OPTIONS_VERSION;
        return 0;
    }
    for (size_t i = 0; i < OPT_COUNT; i++) {
        const struct cfg_item *it = cfg_get(&o->set, &opts[i]);
        const char *val = it != NULL ? it->value : opts[i].def;
        char label[CFG_ERR_MAX];

        if (val == NULL)
            continue;
        if (apply(o, &opts[i], cfg_label(it, &opts[i], label, sizeof(label)), val, errbuf,
                  errlen) != 0)
            return -1;
    }
    if (apply_kafka(o, errbuf, errlen) != 0 || check_combined(o, errbuf, errlen) != 0)
        return -1;
    if (o->print_config)
        o->action = OPTIONS_PRINT_CONFIG;
    return 0;
}

int options_check_kafka(const struct options *o, options_kafka_check_fn check, char *errbuf,
                        size_t errlen)
{
    for (size_t i = 0; i < o->set.nitems; i++) {
        const struct cfg_item *it = &o->set.items[i];
        char label[CFG_ERR_MAX], name[256], why[CFG_ERR_MAX];

        if (!(it->opt->flags & CFG_KAFKA))
            continue;
        if (it->key_len >= sizeof(name))
            return cfg_seterr(errbuf, errlen, "%s: a property name of %zu bytes",
                              cfg_label(it, it->opt, label, sizeof(label)), it->key_len);
        memcpy(name, it->key, it->key_len);
        name[it->key_len] = '\0';
        if (check(name, it->value, why, sizeof(why)) != 0) {
            /* a file line is labelled "path:line: kafka", say which property */
            if (it->source == CFG_SOURCE_FILE)
                snprintf(label, sizeof(label), "%s:%d", it->origin, it->line);
            else
                cfg_label(it, it->opt, label, sizeof(label));
            return cfg_seterr(errbuf, errlen, "%s: %s", label, why);
        }
    }
    return 0;
}

void options_fini(struct options *o)
{
    if (o == NULL)
        return;
    for (size_t i = 0; i < o->relay.common.nkafka_props; i++)
        free((char *)o->props[i].name);
    o->relay.common.nkafka_props = 0;
    cfg_fini(&o->set);
}

void options_usage(FILE *f)
{
    cfg_usage(f, opts, OPT_COUNT);
}

void options_print(FILE *f, const struct options *o)
{
    cfg_print(f, &o->set);
}
