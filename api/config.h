/*
 * orders-api configuration: one table of options, each with a flag, an
 * environment variable, a config-file key and a default. Flags beat the
 * environment, which beats the config file, which beats defaults; an empty
 * variable counts as unset. No I/O but reading the config file (the
 * environment comes in through a callback), so the unit tests drive it
 * directly. Never logs.
 */
#ifndef ORDERS_API_CONFIG_H
#define ORDERS_API_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/socket.h>

#include "cfg.h"
#include "compiler.h"
#include "log.h"
#include "store.h"

#define CONFIG_ADDR_STR_MAX 64 /* "[ffff:...:ffff]:65535" plus NUL, with room */
#define CONFIG_ERR_MAX      512

enum config_action {
    CONFIG_ACTION_SERVE = 0, /* run the HTTP service */
    CONFIG_ACTION_MIGRATE,   /* --migrate */
    CONFIG_ACTION_HELP,      /* --help: print config_usage, exit 0 */
    CONFIG_ACTION_VERSION,   /* --version */
};

struct config {
    enum config_action action;
    const char *database_url;            /* borrowed from argv or the environment; NULL if unset */
    char listen[CONFIG_ADDR_STR_MAX];    /* as given, e.g. "127.0.0.1:8080" or "[::1]:0" */
    struct sockaddr_storage listen_addr; /* parsed; port 0 means "pick a free port" */
    socklen_t listen_addr_len;
    int pool_size;     /* DB connections and HTTP worker threads */
    int db_timeout_ms; /* pool checkout, connect and statement timeout */
    enum log_level log_level;
    enum log_format log_format;
    enum store_outbox_mode outbox_mode; /* --outbox-mode table|message */
    bool print_config;                  /* --print-config: print, exit 0 */
    struct cfg_set set;                 /* where each value came from; owns the file text */
};

/* Reads one environment variable; returns NULL if unset. getenv() fits. */
typedef char *(*config_getenv_fn)(const char *name);

/*
 * Fills *cfg from defaults, then the config file (--config or API_CONFIG),
 * then getenv_fn, then argv[1..argc) ("--name value" or "--name=value").
 * --help and --version stop parsing and set cfg->action. Strings in *cfg are
 * borrowed from argv, the environment or cfg->set: call config_fini after
 * the last use (also after a failure).
 * DATABASE_URL is not required here (--help needs none); callers that need it
 * check cfg->database_url.
 * @returns 0, or -1 with a message naming the option (flag or variable) and
 * the reason in errbuf. Thread-safe if getenv_fn is.
 */
int config_parse(struct config *cfg, int argc, char **argv, config_getenv_fn getenv_fn,
                 char *errbuf, size_t errlen) MUSTCHECK;

/*
 * Parses "a.b.c.d:port" or "[v6]:port" (numeric hosts only, port 0..65535)
 * into *addr. @returns 0, or -1 with the reason in errbuf.
 */
int config_parse_listen(const char *s, struct sockaddr_storage *addr, socklen_t *addr_len,
                        char *errbuf, size_t errlen) MUSTCHECK;

/* Frees what config_parse allocated (the config file text). */
void config_fini(struct config *cfg);

/* Writes --print-config: every option, its value and source, secrets masked. */
void config_print(FILE *f, const struct config *cfg);

/* Writes the --help text (every option with its variable and default) to f. */
void config_usage(FILE *f, const char *prog);

#endif
