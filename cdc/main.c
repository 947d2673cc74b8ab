/*
 * cdc-relay: command line, environment, signals. Flags beat environment,
 * environment beats defaults (DESIGN.md). Exits 0 on a clean stop, 1 on a
 * fatal error, 2 on bad usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "lsn.h"
#include "metrics.h"
#include "metrics_http.h"
#include "relay.h"
#include "xmem.h"

#define RELAY_VERSION   "0.1.0"
#define MAX_KAFKA_PROPS 256

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
    if (stop_pipe[1] >= 0) {
        int saved = errno;
        (void)!write(stop_pipe[1], "x", 1);
        errno = saved;
    }
}

static void usage(FILE *out)
{
    fprintf(
        out,
        "Usage: cdc-relay [OPTIONS]\n"
        "\n"
        "Streams inserts into the outbox table from a Postgres logical replication slot\n"
        "(pgoutput) to Kafka, and confirms each position to Postgres only after Kafka\n"
        "acknowledged every event before it (at-least-once).\n"
        "\n"
        "Options (flags beat environment variables, which beat defaults):\n"
        "  --database-url URL      libpq URI or conninfo of the database holding the outbox\n"
        "                          [env DATABASE_URL; required]\n"
        "  --brokers LIST          Kafka bootstrap servers [env KAFKA_BROKERS; default "
        "127.0.0.1:9092]\n"
        "  --slot NAME             replication slot [env CDC_SLOT; default cdc_outbox_slot]\n"
        "  --publication NAME      publication [env CDC_PUBLICATION; default cdc_outbox_pub]\n"
        "  --table SCHEMA.NAME     outbox table [env CDC_TABLE; default public.outbox]\n"
        "  --topic-template TMPL   topic for each event; ${aggregate_type} and ${event_type}\n"
        "                          are replaced [env CDC_TOPIC_TEMPLATE; default "
        "${aggregate_type}.events]\n"
        "  --source table|messages table: inserts into the outbox table; messages: also\n"
        "                          transactional pg_logical_emit_message events (no table\n"
        "                          needed) [env CDC_SOURCE; default table]\n"
        "  --message-prefix P      prefix of those messages [env CDC_MESSAGE_PREFIX; default "
        "outbox]\n"
        "  --heartbeat-interval SEC  write a logical message (pg_logical_emit_message,\n"
        "                          prefix cdc-relay-heartbeat) this often, so a silent\n"
        "                          database still lets the slot advance [default off]\n"
        "  --no-create-slot        fail if the slot is missing instead of creating it\n"
        "  --no-create-publication fail if the publication is missing instead of creating "
        "it\n"
        "  --start-lsn X/Y         relay only transactions whose commit LSN is >= X/Y; refused\n"
        "                          if older than the slot's confirmed_flush_lsn\n"
        "  --end-lsn X/Y           stop (exit 0) after the last transaction whose commit LSN "
        "is <= X/Y\n"
        "  --status-interval SEC   standby status update cadence; also how often, while\n"
        "                          there is a new position to confirm, the relay checks that\n"
        "                          the table is still in the publication (exit 1 if not)\n"
        "                          [default 10]\n"
        "  --server-timeout SEC    reconnect when the server sent nothing this long; a probe\n"
        "                          is sent at half of it [default 60]\n"
        "  --shutdown-timeout SEC  on SIGTERM/SIGINT, wait this long for deliveries [default "
        "30]\n"
        "  --state-file PATH       where the last delivered position is saved (written\n"
        "                          atomically before Postgres is told) and resumed from\n"
        "                          [env CDC_STATE_FILE; default cdc-relay.<slot>.state in the\n"
        "                          working directory]\n"
        "  --no-state-file         keep no state file (resume from the slot alone)\n"
        "  --replay-window DUR     hold the slot's confirmed position back by DUR (900, 15m,\n"
        "                          2h) so that window can be replayed with --start-lsn; costs\n"
        "                          that much WAL on the server [default 0]\n"
        "  --reconnect-max SEC     cap of the reconnect backoff [default 30]\n"
        "  -X NAME=VALUE           set any librdkafka property (repeatable), e.g.\n"
        "                          -X compression.type=lz4; applied after the relay's "
        "defaults\n"
        "                          (enable.idempotence=true acks=all message.timeout.ms=0\n"
        "                          partitioner=murmur2_random linger.ms=5)\n"
        "  --log-level LEVEL       error, warn, info, debug [env LOG_LEVEL; default info]\n"
        "  --log-format FORMAT     text, or json (one object a line: ts, level, msg, and\n"
        "                          lsn and event_id on event lines) [env LOG_FORMAT;\n"
        "                          default text]\n"
        "  --metrics-listen ADDR   serve GET /metrics (Prometheus), /healthz and /readyz on\n"
        "                          HOST:PORT (port 0: any free one; the address is logged as\n"
        "                          'metrics listening addr=HOST:PORT') [env\n"
        "                          CDC_METRICS_LISTEN; default off]\n"
        "  -h, --help              show this help and exit\n"
        "  -V, --version           show the version and exit\n"
        "\n"
        "Kafka messages: topic from --topic-template, key aggregate_id, value payload,\n"
        "headers id, event_type, aggregate_type, lsn (commit LSN), commit_ts (ISO 8601 UTC).\n"
        "Exit status: 0 stopped cleanly, 1 fatal error (logged), 2 bad usage.\n");
}

static const char *env_or(const char *name, const char *fallback)
{
    const char *v = getenv(name);

    /* An empty variable counts as unset, as in kcat's kc_getenv. */
    return (v != NULL && *v != '\0') ? v : fallback;
}

static int parse_seconds(const char *opt, const char *s, int *out_ms)
{
    char *end;
    double v;

    errno = 0;
    v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || v <= 0 || v > 86400) {
        fprintf(stderr, "cdc-relay: %s: '%s' is not a number of seconds in (0, 86400]\n", opt, s);
        return -1;
    }
    *out_ms = (int)(v * 1000);
    if (*out_ms < 1)
        *out_ms = 1;
    return 0;
}

/* "900", "900s", "15m", "2h", "1d" to seconds. */
static int parse_duration(const char *opt, const char *s, int64_t *out_s)
{
    char *end;
    long long v;

    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno == 0 && end != s && v >= 0) {
        int64_t mult = 1;

        if (*end == 'm')
            mult = 60;
        else if (*end == 'h')
            mult = 3600;
        else if (*end == 'd')
            mult = 86400;
        else if (*end != 's' && *end != '\0')
            mult = 0;
        if (mult != 0 && (*end == '\0' || end[1] == '\0') && v <= INT64_C(3650) * 86400 / mult) {
            *out_s = v * mult;
            return 0;
        }
    }
    fprintf(stderr, "cdc-relay: %s: '%s' is not a duration like 900, 900s, 15m, 2h or 1d\n", opt,
            s);
    return -1;
}

static int parse_lsn_opt(const char *opt, const char *s, uint64_t *out)
{
    if (!lsn_parse(s, out) || *out == 0) {
        fprintf(stderr, "cdc-relay: %s: '%s' is not a non-zero LSN of the form X/Y (hex)\n", opt,
                s);
        return -1;
    }
    return 0;
}

static const char *need_arg(int argc, char **argv, int *i)
{
    if (*i + 1 >= argc) {
        fprintf(stderr, "cdc-relay: %s needs a value (see --help)\n", argv[*i]);
        return NULL;
    }
    return argv[++*i];
}

int main(int argc, char **argv)
{
    static struct sink_prop props[MAX_KAFKA_PROPS];
    struct relay_config cfg = {
        .database_url = env_or("DATABASE_URL", NULL),
        .brokers = env_or("KAFKA_BROKERS", "127.0.0.1:9092"),
        .slot = env_or("CDC_SLOT", "cdc_outbox_slot"),
        .publication = env_or("CDC_PUBLICATION", "cdc_outbox_pub"),
        .topic_template = env_or("CDC_TOPIC_TEMPLATE", "${aggregate_type}.events"),
        .message_prefix = env_or("CDC_MESSAGE_PREFIX", "outbox"),
        .create_slot = true,
        .create_publication = true,
        .status_interval_ms = 10000,
        .shutdown_timeout_ms = 30000,
        .server_timeout_ms = 60000,
        .connect_timeout_s = 10,
        .reconnect_max_ms = 30000,
        .kafka_props = props,
        .stop = &stop_requested,
        .stop_fd = -1,
    };
    const char *table = env_or("CDC_TABLE", "public.outbox");
    const char *level = env_or("LOG_LEVEL", "info");
    const char *log_format = env_or("LOG_FORMAT", "text");
    const char *metrics_listen = env_or("CDC_METRICS_LISTEN", NULL);
    struct metrics_board *board = NULL;
    struct metrics_http *http = NULL;
    char dsn_shown[512];
    const char *state_file = env_or("CDC_STATE_FILE", NULL);
    const char *source = env_or("CDC_SOURCE", "table");
    bool no_state_file = false;
    char default_state[512];
    struct sigaction sa;
    enum relay_exit rc;
    char *table_copy, *dot;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;

        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0) {
            printf("cdc-relay %s\n", RELAY_VERSION);
            return 0;
        } else if (strcmp(a, "--no-create-slot") == 0) {
            cfg.create_slot = false;
        } else if (strcmp(a, "--no-create-publication") == 0) {
            cfg.create_publication = false;
        } else if (strcmp(a, "--source") == 0 && i + 1 < argc) {
            source = argv[++i];
        } else if (strcmp(a, "--message-prefix") == 0 && i + 1 < argc) {
            cfg.message_prefix = argv[++i];
        } else if (strcmp(a, "--heartbeat-interval") == 0 && i + 1 < argc) {
            if (parse_seconds(a, argv[++i], &cfg.heartbeat_interval_ms) != 0)
                return 2;
        } else if (strcmp(a, "--no-state-file") == 0) {
            no_state_file = true;
        } else if ((v = strchr(a, '=')) != NULL && strncmp(a, "--", 2) == 0) {
            fprintf(stderr, "cdc-relay: write '%.*s %s' with a space, not '='\n", (int)(v - a), a,
                    v + 1);
            return 2;
        } else if (strcmp(a, "-X") == 0 || strcmp(a, "--database-url") == 0 ||
                   strcmp(a, "--brokers") == 0 || strcmp(a, "--slot") == 0 ||
                   strcmp(a, "--publication") == 0 || strcmp(a, "--table") == 0 ||
                   strcmp(a, "--topic-template") == 0 || strcmp(a, "--start-lsn") == 0 ||
                   strcmp(a, "--end-lsn") == 0 || strcmp(a, "--status-interval") == 0 ||
                   strcmp(a, "--server-timeout") == 0 || strcmp(a, "--shutdown-timeout") == 0 ||
                   strcmp(a, "--reconnect-max") == 0 || strcmp(a, "--log-level") == 0 ||
                   strcmp(a, "--state-file") == 0 || strcmp(a, "--replay-window") == 0 ||
                   strcmp(a, "--log-format") == 0 || strcmp(a, "--metrics-listen") == 0) {
            if ((v = need_arg(argc, argv, &i)) == NULL)
                return 2;
            if (strcmp(a, "-X") == 0) {
                char *eq = strchr(v, '=');
                if (eq == NULL || eq == v) {
                    fprintf(stderr, "cdc-relay: -X expects NAME=VALUE, got '%s'\n", v);
                    return 2;
                }
                if (cfg.nkafka_props == MAX_KAFKA_PROPS) {
                    fprintf(stderr, "cdc-relay: more than %d -X properties\n", MAX_KAFKA_PROPS);
                    return 2;
                }
                props[cfg.nkafka_props].name = xstrndup(v, (size_t)(eq - v));
                props[cfg.nkafka_props].value = eq + 1;
                cfg.nkafka_props++;
            } else if (strcmp(a, "--database-url") == 0) {
                cfg.database_url = v;
            } else if (strcmp(a, "--brokers") == 0) {
                cfg.brokers = v;
            } else if (strcmp(a, "--slot") == 0) {
                cfg.slot = v;
            } else if (strcmp(a, "--publication") == 0) {
                cfg.publication = v;
            } else if (strcmp(a, "--table") == 0) {
                table = v;
            } else if (strcmp(a, "--topic-template") == 0) {
                cfg.topic_template = v;
            } else if (strcmp(a, "--start-lsn") == 0) {
                if (parse_lsn_opt(a, v, &cfg.start_lsn) != 0)
                    return 2;
            } else if (strcmp(a, "--end-lsn") == 0) {
                if (parse_lsn_opt(a, v, &cfg.end_lsn) != 0)
                    return 2;
            } else if (strcmp(a, "--status-interval") == 0) {
                if (parse_seconds(a, v, &cfg.status_interval_ms) != 0)
                    return 2;
            } else if (strcmp(a, "--server-timeout") == 0) {
                if (parse_seconds(a, v, &cfg.server_timeout_ms) != 0)
                    return 2;
            } else if (strcmp(a, "--shutdown-timeout") == 0) {
                if (parse_seconds(a, v, &cfg.shutdown_timeout_ms) != 0)
                    return 2;
            } else if (strcmp(a, "--state-file") == 0) {
                state_file = v;
            } else if (strcmp(a, "--replay-window") == 0) {
                if (parse_duration(a, v, &cfg.replay_window_s) != 0)
                    return 2;
            } else if (strcmp(a, "--reconnect-max") == 0) {
                if (parse_seconds(a, v, &cfg.reconnect_max_ms) != 0)
                    return 2;
            } else if (strcmp(a, "--log-format") == 0) {
                log_format = v;
            } else if (strcmp(a, "--metrics-listen") == 0) {
                metrics_listen = v;
            } else {
                level = v;
            }
        } else {
            fprintf(stderr, "cdc-relay: unknown option '%s' (see --help)\n", a);
            return 2;
        }
    }
    if (!log_level_parse(level, &log_threshold)) {
        fprintf(stderr, "cdc-relay: log level '%s' is not one of error, warn, info, debug\n",
                level);
        return 2;
    }
    if (!log_format_parse(log_format, &log_output)) {
        fprintf(stderr, "cdc-relay: log format '%s' is not one of text, json\n", log_format);
        return 2;
    }
    if (cfg.database_url == NULL) {
        fprintf(stderr, "cdc-relay: no database: set DATABASE_URL or pass --database-url\n");
        return 2;
    }
    if (cfg.start_lsn != 0 && cfg.end_lsn != 0 && cfg.end_lsn < cfg.start_lsn) {
        fprintf(stderr, "cdc-relay: --end-lsn is before --start-lsn\n");
        return 2;
    }
    table_copy = xstrdup(table);
    dot = strchr(table_copy, '.');
    if (dot == NULL) {
        cfg.table_schema = "public";
        cfg.table_name = table_copy;
    } else {
        *dot = '\0';
        cfg.table_schema = table_copy;
        cfg.table_name = dot + 1;
    }
    if (*cfg.table_schema == '\0' || *cfg.table_name == '\0' || strchr(cfg.table_name, '.')) {
        fprintf(stderr, "cdc-relay: --table '%s' is not SCHEMA.NAME\n", table);
        return 2;
    }

    if (strcmp(source, "messages") == 0) {
        cfg.source_messages = true;
    } else if (strcmp(source, "table") != 0) {
        fprintf(stderr, "cdc-relay: --source '%s' is not 'table' or 'messages'\n", source);
        return 2;
    }
    if (*cfg.message_prefix == '\0') {
        fprintf(stderr, "cdc-relay: --message-prefix must not be empty\n");
        return 2;
    }
    if (!no_state_file) {
        if (state_file == NULL) {
            snprintf(default_state, sizeof(default_state), "cdc-relay.%s.state", cfg.slot);
            state_file = default_state;
        }
        cfg.state_file = state_file;
    }

    if (pipe(stop_pipe) == 0) {
        fcntl(stop_pipe[0], F_SETFL, O_NONBLOCK);
        fcntl(stop_pipe[1], F_SETFL, O_NONBLOCK);
        cfg.stop_fd = stop_pipe[0];
    }
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);

    log_info("cdc-relay %s starting: slot \"%s\" publication \"%s\" table %s.%s brokers %s "
             "database %s",
             RELAY_VERSION, cfg.slot, cfg.publication, cfg.table_schema, cfg.table_name,
             cfg.brokers, log_redact_dsn(cfg.database_url, dsn_shown, sizeof(dsn_shown)));
    if (metrics_listen != NULL) {
        char err[512], addr[128];
        sigset_t stop_set;

        board = metrics_board_new();
        /* The server thread inherits this mask: signals stay with the loop. */
        sigemptyset(&stop_set);
        sigaddset(&stop_set, SIGINT);
        sigaddset(&stop_set, SIGTERM);
        pthread_sigmask(SIG_BLOCK, &stop_set, NULL);
        http = metrics_http_start(metrics_listen, board, err, sizeof(err));
        pthread_sigmask(SIG_UNBLOCK, &stop_set, NULL);
        if (http == NULL) {
            log_error("%s", err);
            metrics_board_free(board);
            return 1;
        }
        metrics_http_addr(http, addr, sizeof(addr));
        log_info("metrics listening addr=%s", addr);
        cfg.metrics = board;
    }
    rc = relay_run(&cfg);
    metrics_http_stop(http);
    metrics_board_free(board);

    for (size_t i = 0; i < cfg.nkafka_props; i++)
        free((char *)props[i].name);
    free(table_copy);
    close(stop_pipe[0]);
    close(stop_pipe[1]);
    return rc == RELAY_EXIT_OK ? 0 : 1;
}
