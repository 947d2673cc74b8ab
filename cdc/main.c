/*
 * cdc-relay: options (cdc/options.c: flags beat the environment, which
 * beats the config file, which beats defaults), signals, the metrics
 * listener. Exit status: enum relay_exit (relay.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "audit.h"
#include "reemit_cmd.h"
#include "log.h"
#include "metrics.h"
#include "metrics_http.h"
#include "notify.h"
#include "options.h"
#include "poll_relay.h"
#include "prune.h"
#include "relay.h"
#include "repl.h"
#include "sink_kafka.h"
#include "version.h"

extern char **environ;

static volatile sig_atomic_t stop_requested;
static int stop_pipe[2] = {-1, -1};

static void on_signal(int sig)
{
    (void)sig;
    if (stop_requested) {
        /* Second signal: the operator does not want to wait for the drain. */
        _exit(1);
    }
    stop_requested = 1;
    /* systemd: stopping from now (the drain may take --shutdown-timeout). */
    notify_send("STOPPING=1");
    if (stop_pipe[1] >= 0) {
        int saved = errno;
        (void)!write(stop_pipe[1], "x", 1);
        errno = saved;
    }
}

static void usage(FILE *out)
{
    fprintf(out, "Usage: cdc-relay [OPTIONS]\n"
                 "       cdc-relay audit --since TIME [--until TIME] [OPTIONS]\n"
                 "       cdc-relay prune --older-than DUR [OPTIONS]\n"
                 "       cdc-relay reemit --ids A..B | --since TIME [--until TIME] [--wait] "
                 "[OPTIONS]\n"
                 "\n"
                 "Streams inserts into the outbox table from a Postgres logical replication slot\n"
                 "(pgoutput) to Kafka, and confirms each position to Postgres only after Kafka\n"
                 "acknowledged every event before it (at-least-once).\n"
                 "\n"
                 "Flags beat environment variables, which beat the config file (--config), which\n"
                 "beats the defaults; an empty variable counts as unset. In the file each option\n"
                 "is a \"name = value\" line, name being the long option without --; switches\n"
                 "take true or false there and in the environment. DUR is a duration with a\n"
                 "unit (500ms, 10s, 15m, 2h, 1d, 1h30m); a bare number is seconds, or\n"
                 "milliseconds where the help says so.\n"
                 "\n"
                 "Options:\n");
    options_usage(out);
    fprintf(out,
            "\n"
            "Kafka messages: topic from --topic-template, key aggregate_id, value payload,\n"
            "headers id, event_type, aggregate_type, lsn (commit LSN), commit_ts (ISO 8601 UTC).\n"
            "Poll mode sends no lsn header; its commit_ts is the commit time when the server has\n"
            "track_commit_timestamp = on, else the row's created_at. Slot, publication, state\n"
            "file and status options do not apply to it.\n"
            "Exit status (docs/relay.md, \"Exit status\"):\n"
            "  0  stopped cleanly (SIGTERM/SIGINT, --end-lsn, --until-empty)\n"
            "  1  needs a person: configuration, login, a possible gap, an event that cannot\n"
            "     be delivered (logged with what to do); do not restart blindly\n"
            "  2  bad usage\n"
            "  3  fenced: another relay took over the transactional.id (--exactly-once)\n"
            "  4  temporary: the slot stayed held by another session for 15 s (another\n"
            "     relay, or a dead relay's walsender); a later start may succeed\n"
            "A supervisor restarts after 4 and after a crash, never after 1, 2 or 3\n"
            "(deploy/systemd/cdc-relay.service: RestartPreventExitStatus=1 2 3).\n"
            "\n"
            "cdc-relay audit --since TIME [--until TIME] [OPTIONS]: compares the outbox rows\n"
            "whose --timestamp-column is in [since, until) with the id headers of the messages\n"
            "in their topics (read_committed, from --clock-skew before since to the end) and\n"
            "prints each row whose event is missing and each message no row explains, then a\n"
            "summary line. The same options as the relay say where the table, the topics and\n"
            "the brokers are. The audit's exit status: 0 all found, nothing unexpected; 1\n"
            "error; 2 bad usage; 4 events missing; 5 none missing but unexpected messages.\n"
            "\n"
            "cdc-relay prune --older-than DUR [OPTIONS]: deletes outbox rows whose\n"
            "--timestamp-column is older than DUR and whose events were delivered, in\n"
            "batches of --batch-size rows, each its own transaction. Stream mode: prune\n"
            "reads the WAL position L and the oldest running transaction H together, waits\n"
            "(--confirm-timeout) until the slot's confirmed position, or the --state-file's,\n"
            "reaches L, then deletes only rows written by transactions older than H, which\n"
            "committed before L. Poll mode: only rows whose --published-column is set. A\n"
            "partitioned outbox (RANGE on --timestamp-column) loses whole partitions that\n"
            "end before the cutoff and hold only such rows (detached and dropped, or\n"
            "--keep-detached) (docs/operations.md#pruning-the-outbox). The prune's exit\n"
            "status: 0 done (or --max-duration reached); 1 error; 2 bad usage; 4 the slot\n"
            "is missing or unusable; 5 the delivered position did not reach L within\n"
            "--confirm-timeout (temporary: the relay is stopped or behind).\n"
            "\n"
            "cdc-relay reemit --ids A..B | --since TIME [--until TIME] [--wait]: asks the relay\n"
            "streaming --slot to send the outbox rows of the range again (id column in [A, B],\n"
            "or --timestamp-column in [since, until)), as they existed when the command ran:\n"
            "same id, key, payload and headers, commit_ts the row's time, plus the headers\n"
            "replayed: true and replay_request: the request's LSN, no lsn header. The request\n"
            "is a transactional logical decoding message; the relay serves it at its place in\n"
            "the WAL, before anything committed after it (per-key order), and confirms it only\n"
            "once Kafka acknowledged every row (after a crash it is served again: duplicates,\n"
            "never a gap). Prints the request's LSN and the row count. --wait polls until the\n"
            "relay delivered it. Exit status: 0 written (and delivered, with --wait); 1 error;\n"
            "2 bad usage; 4 not delivered within --wait-timeout.\n");
}

/* The libraries as loaded (cdc_relay_build_info, --version). */
static const struct version_libs *relay_libs(void)
{
    static char libpq[16];
    static struct version_libs libs;

    libs.libpq = version_format_pg(repl_libpq_version(), libpq, sizeof(libpq));
    libs.librdkafka = sink_kafka_version();
    libs.jansson = sink_jansson_version();
    libs.libmicrohttpd = metrics_http_mhd_version();
    return &libs;
}

/* cdc-relay prune: no metrics, no systemd notifications, the summary on
 * stdout; a signal stops it between batches. */
static int run_prune(const struct options *o)
{
    const struct relay_common_config *common = &o->relay.common;
    struct prune_config pc = {
        .database_url = common->database_url,
        .table_schema = common->table_schema,
        .table_name = common->table_name,
        .columns = common->columns,
        .poll_mode = o->relay.poll_mode,
        .slot = o->relay.stream.slot,
        .state_file = o->relay.stream.state_file,
        .now_us = o->now_us,
        .older_than_s = o->prune.older_than_s,
        .batch_size = o->prune.batch_size,
        .batch_pause_ms = o->prune.batch_pause_ms,
        .max_duration_ms = o->prune.max_duration_ms,
        .wait_ms = o->prune.wait_ms,
        .lock_timeout_ms = o->prune.lock_timeout_ms,
        .dry_run = o->prune.dry_run,
        .keep_detached = o->prune.keep_detached,
        .connect_timeout_s = common->connect_timeout_s,
        .stop = &stop_requested,
        .out = stdout,
    };
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    return prune_run(&pc);
}

/* cdc-relay audit: no metrics, no systemd notifications, the report on stdout. */
static int run_audit(const struct options *o)
{
    const struct relay_common_config *common = &o->relay.common;
    struct audit_config ac = {
        .database_url = common->database_url,
        .brokers = common->brokers,
        .kafka_props = common->kafka_props,
        .nkafka_props = common->nkafka_props,
        .table_schema = common->table_schema,
        .table_name = common->table_name,
        .columns = common->columns,
        .topic_template = common->topic_template,
        .topics = o->audit_topics,
        .dead_letter_topic = o->relay.stream.dead_letter_topic,
        .since_us = o->audit.since_us,
        .until_us = o->audit.until_us,
        .clock_skew_ms = o->clock_skew_ms,
        .connect_timeout_s = common->connect_timeout_s,
        .out = stdout,
    };

    return audit_run(&ac);
}

/* cdc-relay reemit: the request's LSN on stdout, progress and errors logged. */
static int run_reemit(struct options *o)
{
    const struct relay_common_config *common = &o->relay.common;
    struct reemit_cmd_config rc = {
        .database_url = common->database_url,
        .slot = o->relay.stream.slot,
        .table_schema = common->table_schema,
        .table_name = common->table_name,
        .columns = common->columns,
        .connect_timeout_s = common->connect_timeout_s,
        .req = &o->reemit.req,
        .wait = o->reemit.wait,
        .wait_timeout_ms = o->reemit.wait_timeout_ms,
        .out = stdout,
    };
    int status = reemit_cmd_run(&rc);

    reemit_request_free(&o->reemit.req);
    return status;
}

int main(int argc, char **argv)
{
    static struct options opt;
    struct relay_config *cfg = &opt.relay;
    struct metrics_board *board = NULL;
    struct metrics_http *http = NULL;
    char dsn_shown[512], err[OPTIONS_ERR_MAX], table[300];
    struct sigaction sa;
    struct timespec start;
    enum relay_exit rc;

    clock_gettime(CLOCK_REALTIME, &start);
    if (options_parse(&opt, argc, argv, getenv, environ, err, sizeof(err)) != 0 ||
        (opt.action != OPTIONS_HELP && opt.action != OPTIONS_VERSION &&
         options_check_kafka(&opt, sink_prop_check, err, sizeof(err)) != 0)) {
        fprintf(stderr, "cdc-relay: %s\nTry 'cdc-relay --help'.\n", err);
        options_fini(&opt);
        return RELAY_EXIT_USAGE;
    }
    switch (opt.action) {
    case OPTIONS_HELP:
        usage(stdout);
        return 0;
    case OPTIONS_VERSION:
        version_print(stdout, "cdc-relay", relay_libs());
        return 0;
    case OPTIONS_PRINT_CONFIG:
        /* Before the DATABASE_URL check: an incomplete configuration is worth seeing. */
        options_print(stdout, &opt);
        options_fini(&opt);
        return 0;
    case OPTIONS_RUN:
        break;
    }
    if (cfg->common.database_url == NULL) {
        fprintf(stderr, "cdc-relay: no database: set DATABASE_URL or pass --database-url\n");
        options_fini(&opt);
        return RELAY_EXIT_USAGE;
    }
    log_detect_journal();
    log_threshold = opt.log_level;
    log_output = opt.log_format;
    /* libpq's and librdkafka's messages may quote what they were given:
     * never a password or a key (docs/security.md). */
    log_add_dsn_secrets(cfg->common.database_url);
    for (size_t i = 0; i < cfg->common.nkafka_props; i++)
        if (sink_prop_is_secret(cfg->common.kafka_props[i].name))
            log_add_secret(cfg->common.kafka_props[i].value,
                           strlen(cfg->common.kafka_props[i].value));
    if (opt.command == OPTIONS_CMD_AUDIT) {
        int audit_rc = run_audit(&opt);

        options_fini(&opt);
        return audit_rc;
    }
    if (opt.command == OPTIONS_CMD_PRUNE) {
        int prune_rc = run_prune(&opt);

        options_fini(&opt);
        return prune_rc;
    }
    if (opt.command == OPTIONS_CMD_REEMIT) {
        int reemit_rc = run_reemit(&opt);

        options_fini(&opt);
        return reemit_rc;
    }
    notify_init();
    cfg->common.stop.flag = &stop_requested;

    if (pipe(stop_pipe) == 0) {
        fcntl(stop_pipe[0], F_SETFL, O_NONBLOCK);
        fcntl(stop_pipe[1], F_SETFL, O_NONBLOCK);
        cfg->common.stop.fd = stop_pipe[0];
    }
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);

    snprintf(table, sizeof(table), "%s.%s", cfg->common.table_schema, cfg->common.table_name);
    log_redact_dsn(cfg->common.database_url, dsn_shown, sizeof(dsn_shown));
    if (cfg->poll_mode)
        log_fields(LOG_LEVEL_INFO, "starting", LOG_STR("version", ORDERS_CDC_VERSION),
                   LOG_STR("mode", "poll"), LOG_STR("table", table),
                   LOG_STR("brokers", cfg->common.brokers), LOG_STR("database", dsn_shown));
    else
        log_fields(LOG_LEVEL_INFO, "starting", LOG_STR("version", ORDERS_CDC_VERSION),
                   LOG_STR("mode", "stream"), LOG_STR("slot", cfg->stream.slot),
                   LOG_STR("publication", cfg->stream.publication), LOG_STR("table", table),
                   LOG_STR("brokers", cfg->common.brokers), LOG_STR("database", dsn_shown));
    if (opt.metrics_listen != NULL) {
        char addr[128];
        sigset_t stop_set;

        board = metrics_board_new();
        /* The server thread inherits this mask: signals stay with the loop. */
        sigemptyset(&stop_set);
        sigaddset(&stop_set, SIGINT);
        sigaddset(&stop_set, SIGTERM);
        pthread_sigmask(SIG_BLOCK, &stop_set, NULL);
        http = metrics_http_start(opt.metrics_listen, board, relay_libs(),
                                  (int64_t)start.tv_sec * 1000000 + start.tv_nsec / 1000, err,
                                  sizeof(err));
        pthread_sigmask(SIG_UNBLOCK, &stop_set, NULL);
        if (http == NULL) {
            log_error("%s", err);
            metrics_board_free(board);
            options_fini(&opt);
            return RELAY_EXIT_ERROR;
        }
        metrics_http_addr(http, addr, sizeof(addr));
        log_fields(LOG_LEVEL_INFO, "metrics listening", LOG_STR("addr", addr));
        cfg->common.metrics = board;
    }
    /* READY=1 comes from the loop once it can do its work (streaming, or
     * connected in poll mode); until then systemd shows this. */
    notify_status(cfg->poll_mode ? "connecting to Postgres"
                                 : "connecting to Postgres and the slot");
    rc = cfg->poll_mode ? poll_relay_run(&cfg->common, &cfg->poll)
                        : relay_run(&cfg->common, &cfg->stream);
    metrics_http_stop(http);
    metrics_board_free(board);

    options_fini(&opt);
    close(stop_pipe[0]);
    close(stop_pipe[1]);
    return (int)rc;
}
