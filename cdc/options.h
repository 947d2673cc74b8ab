/*
 * cdc-relay's options: one table (cdc/options.c) gives every option's flag,
 * environment variable, config-file key, default and help; this module turns
 * flags, environment, config file and defaults (in that order of precedence)
 * into a struct relay_config plus the process settings main.c needs. No I/O
 * but reading the config file; never logs.
 */
#ifndef ORDERS_CDC_OPTIONS_H
#define ORDERS_CDC_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cfg.h"
#include "compiler.h"
#include "log.h"
#include "outbox.h"
#include "reemit.h"
#include "relay_config.h"
#include "sink_kafka.h"

#define OPTIONS_MAX_KAFKA_PROPS 256
#define OPTIONS_ERR_MAX         CFG_ERR_MAX

enum options_command {
    OPTIONS_CMD_RELAY = 0, /* the daemon */
    OPTIONS_CMD_AUDIT,     /* cdc-relay audit ... (cdc/audit.h) */
    OPTIONS_CMD_PRUNE,     /* cdc-relay prune ... (cdc/prune.h) */
    OPTIONS_CMD_REEMIT,    /* cdc-relay reemit ... (cdc/reemit_cmd.h) */
};

enum options_action {
    OPTIONS_RUN = 0,
    OPTIONS_HELP,
    OPTIONS_VERSION,
    OPTIONS_PRINT_CONFIG, /* validated; print with options_print, exit 0 */
};

struct options {
    enum options_command command;
    enum options_action action;
    struct relay_config
        relay; /* ready for relay_run or poll_relay_run, apart from stop and metrics */
    enum log_level log_level;
    enum log_format log_format;
    const char *metrics_listen; /* NULL: off (--metrics-listen none) */
    const char *table;          /* as given, SCHEMA.NAME or NAME */
    const char *source;         /* table|messages */
    const char *mode;           /* stream|poll */
    const char *state_file;     /* as given, before --no-state-file */
    const char *header_columns; /* --header-columns as given */
    /* audit: --since/--until as given, the parsed range, --topics, --clock-skew */
    const char *since, *until, *audit_topics;
    int clock_skew_ms;
    struct {
        int64_t since_us, until_us;
    } audit;
    /* prune: --older-than (given or not), --batch-size, ... */
    struct {
        int64_t older_than_s;
        int batch_size, batch_pause_ms, max_duration_ms, wait_ms, lock_timeout_ms;
        bool dry_run, keep_detached;
    } prune;
    /* reemit: --ids, --lsn as given, --wait, --wait-timeout; the request
     * (kind and range; slot and snapshot are filled by the command) */
    struct {
        const char *ids, *lsn;
        bool wait;
        int wait_timeout_ms;
        struct reemit_request req;
    } reemit;
    int64_t now_us;                /* when the options were parsed: "now" and "2h" ago */
    struct outbox_columns columns; /* relay.columns points here */
    char header_spec[4096];        /* --header-columns, cut into names for columns */
    bool no_state_file;
    bool no_create_slot, no_create_publication, print_config, no_failover_slot;
    char table_schema[128], table_name[128];
    char default_state[512];
    struct sink_prop props[OPTIONS_MAX_KAFKA_PROPS]; /* names owned, values borrowed */
    struct cfg_set set;
};

/* Reads one environment variable; returns NULL if unset. getenv() fits. */
typedef char *(*options_getenv_fn)(const char *name);

/*
 * Fills *o from argv (argv[1] "audit" or "reemit" selects that command, the options
 * following it), getenv_fn, the config file (--config or CDC_CONFIG) and
 * the defaults, and validates every value; envp (the whole environment,
 * NAME=VALUE strings, may be NULL) gives the CDC_KAFKA_* properties. DATABASE_URL is not required
 * here
 * (--help and --print-config need none). Strings in *o are borrowed from
 * argv, the environment or o->set: call options_fini after the last use,
 * also after a failure.
 * @returns 0, or -1 with a message naming the option (flag, variable or
 * file:line) and the reason in errbuf.
 */
int options_parse(struct options *o, int argc, char **argv, options_getenv_fn getenv_fn,
                  char *const *envp, char *errbuf, size_t errlen) MUSTCHECK;

/* Checks one librdkafka property as librdkafka would take it: 0, or -1 with
 * the reason in why (never the value of a secret property). */
typedef int (*options_kafka_check_fn)(const char *name, const char *value, char *why,
                                      size_t whylen);

/*
 * Runs check on every Kafka property o holds (config file, properties
 * files, -X), in the order they are applied. @returns 0, or -1 with
 * "LABEL: reason" in errbuf, LABEL being "-X" or "FILE:LINE": bad usage.
 */
int options_check_kafka(const struct options *o, options_kafka_check_fn check, char *errbuf,
                        size_t errlen) MUSTCHECK;

/* Frees the Kafka property names and the config file text. NULL-safe. */
void options_fini(struct options *o);

/* --help. */
void options_usage(FILE *f);

/* --print-config: every option, its value and source, secrets masked. */
void options_print(FILE *f, const struct options *o);

#endif
