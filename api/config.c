/*
 * Option table and parser for orders-api (see config.h). Each value is
 * collected from the environment and argv first and validated once at the
 * end, so an error names where the winning value came from. Must never echo
 * the database URL: it may hold a password.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "cfg_print.h"
#include "duration.h"

enum opt_kind {
    OPT_DSN = 1,    /* string, never echoed */
    OPT_LISTEN,     /* host:port */
    OPT_INT,        /* integer in [min, max] stored at offset */
    OPT_DUR_MS,     /* int milliseconds in [min, max] at offset; bare number: ms */
    OPT_LOG_LEVEL,  /* error|warn|info|debug */
    OPT_LOG_FORMAT, /* text|json */
    OPT_OUTBOX,     /* table|message */
    OPT_MIGRATE,    /* switch: --migrate */
    OPT_PRINT,      /* switch: --print-config */
    OPT_CONFIG,     /* --config FILE: read by cfg_parse itself */
    OPT_HELP,
    OPT_VERSION,
};

/*
 * Every orders-api option, one row each: --help, the environment, the config
 * file (key = name) and --print-config all come from this table, and
 * docs/configuration.md is checked against --help by
 * tests/integration/test_config_docs.py. To add an option: add a row (name,
 * short, env, metavar, default, CFG_* flags, kind, offset, min, max, help), a
 * field in struct config, a case in apply() if the kind is new, and a line in
 * docs/configuration.md.
 */
static const struct cfg_opt opts[] = {
    {"config", 0, "API_CONFIG", "FILE", NULL, CFG_CONFIG, OPT_CONFIG, 0, 0, 0,
     "read options from FILE: \"name = value\" lines, '#' comments\n"
     "(docs/configuration.md)"},
    {"database-url", 0, "DATABASE_URL", "URL", NULL, CFG_SECRET_DSN | CFG_FILE_FORM, OPT_DSN, 0, 0,
     0,
     "PostgreSQL URI or key=value conninfo (required);\n"
     "--database-url-file PATH, DATABASE_URL_FILE or\n"
     "database-url-file read it from a file (a systemd credential)"},
    {"listen", 0, "LISTEN_ADDR", "ADDR", "127.0.0.1:8080", 0, OPT_LISTEN, 0, 0, 0,
     "IPv4:port or [IPv6]:port; port 0 picks a free port"},
    {"pool-size", 0, "DB_POOL_SIZE", "N", "8", 0, OPT_INT, offsetof(struct config, pool_size), 1,
     128, "database connections = HTTP worker threads (1..128)"},
    {"db-timeout-ms", 0, "DB_TIMEOUT_MS", "DUR", "5s", 0, OPT_DUR_MS,
     offsetof(struct config, db_timeout_ms), 100, 600000,
     "wait for a pooled connection, connect, and\n"
     "statement_timeout, 100ms..10m (a bare number is\n"
     "milliseconds)"},
    {"log-level", 0, "LOG_LEVEL", "LEVEL", "info", 0, OPT_LOG_LEVEL, 0, 0, 0,
     "error, warn, info or debug"},
    {"log-format", 0, "LOG_FORMAT", "FORMAT", "text", 0, OPT_LOG_FORMAT, 0, 0, 0,
     "text, or json (one object a line: ts, level, msg, then\n"
     "the line's fields), as cdc-relay's"},
    {"outbox-mode", 0, "OUTBOX_MODE", "MODE", "table", 0, OPT_OUTBOX, 0, 0, 0,
     "how the OrderCreated event is written: table (outbox\n"
     "row) or message (pg_logical_emit_message, prefix\n"
     "outbox; needs a relay with --source messages)"},
    {"migrate", 0, NULL, NULL, NULL, CFG_CLI_ONLY, OPT_MIGRATE, 0, 0, 0,
     "apply pending schema migrations and exit"},
    {"print-config", 0, NULL, NULL, NULL, CFG_CLI_ONLY, OPT_PRINT, 0, 0, 0,
     "print the effective configuration (each value and\n"
     "where it came from, passwords masked) and exit 0\n"
     "without connecting"},
    {"help", 'h', NULL, NULL, NULL, CFG_ACTION, OPT_HELP, 0, 0, 0, "print this help and exit"},
    {"version", 'V', NULL, NULL, NULL, CFG_ACTION, OPT_VERSION, 0, 0, 0,
     "print the version and the libraries' versions and exit"},
};

#define OPT_COUNT (sizeof(opts) / sizeof(opts[0]))

static int parse_port(const char *s, unsigned *port)
{
    unsigned long v;
    char *end;

    if (*s < '0' || *s > '9' || strlen(s) > 5)
        return -1;
    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno != 0 || *end != '\0' || v > 65535)
        return -1;
    *port = (unsigned)v;
    return 0;
}

int config_parse_listen(const char *s, struct sockaddr_storage *addr, socklen_t *addr_len,
                        char *errbuf, size_t errlen)
{
    char host[INET6_ADDRSTRLEN + 1];
    const char *colon;
    size_t hlen;
    unsigned port;

    memset(addr, 0, sizeof(*addr));
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)addr;

        if (close == NULL || close[1] != ':')
            return cfg_seterr(errbuf, errlen, "expected [IPv6]:port");
        hlen = (size_t)(close - s - 1);
        if (hlen == 0 || hlen >= sizeof(host))
            return cfg_seterr(errbuf, errlen, "bad IPv6 address");
        memcpy(host, s + 1, hlen);
        host[hlen] = '\0';
        if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1)
            return cfg_seterr(errbuf, errlen, "\"%s\" is not a numeric IPv6 address", host);
        if (parse_port(close + 2, &port) != 0)
            return cfg_seterr(errbuf, errlen, "port must be a number 0..65535");
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)port);
        *addr_len = sizeof(*sin6);
        return 0;
    }
    colon = strrchr(s, ':');
    if (colon == NULL || colon == s)
        return cfg_seterr(errbuf, errlen, "expected host:port (IPv4) or [host]:port (IPv6)");
    hlen = (size_t)(colon - s);
    if (hlen >= sizeof(host) || memchr(s, ':', hlen) != NULL)
        return cfg_seterr(errbuf, errlen, "IPv6 addresses need brackets: [host]:port");
    memcpy(host, s, hlen);
    host[hlen] = '\0';
    {
        struct sockaddr_in *sin = (struct sockaddr_in *)addr;

        if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
            return cfg_seterr(errbuf, errlen, "\"%.*s\" is not a numeric IPv4 address", 64, host);
        if (parse_port(colon + 1, &port) != 0)
            return cfg_seterr(errbuf, errlen, "port must be a number 0..65535");
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)port);
        *addr_len = sizeof(*sin);
    }
    return 0;
}

static int parse_int(const char *s, int min, int max, int *out)
{
    long v;
    char *end;

    if (*s == '\0' || *s == ' ' || *s == '+')
        return -1;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return -1;
    *out = (int)v;
    return 0;
}

/* Validates val for opt and stores it; label says where val came from. */
static int apply(struct config *cfg, const struct cfg_opt *opt, const char *label, const char *val,
                 char *errbuf, size_t errlen)
{
    char why[CONFIG_ERR_MAX];

    switch ((enum opt_kind)opt->kind) {
    case OPT_DSN:
        cfg->database_url = val;
        return 0;
    case OPT_LISTEN:
        if (strlen(val) >= sizeof(cfg->listen))
            return cfg_seterr(errbuf, errlen, "%s: address is too long", label);
        if (config_parse_listen(val, &cfg->listen_addr, &cfg->listen_addr_len, why, sizeof(why)) !=
            0)
            return cfg_seterr(errbuf, errlen, "%s: invalid address \"%.64s\": %s", label, val, why);
        memcpy(cfg->listen, val, strlen(val) + 1);
        return 0;
    case OPT_INT:
        if (parse_int(val, (int)opt->min, (int)opt->max,
                      (int *)(void *)((char *)cfg + opt->offset)) != 0)
            return cfg_seterr(errbuf, errlen, "%s: \"%.64s\" is not an integer between %ld and %ld",
                              label, val, opt->min, opt->max);
        return 0;
    case OPT_DUR_MS: {
        int64_t ms;

        if (!duration_parse_ms(val, DURATION_BARE_MS, &ms) || ms < opt->min || ms > opt->max) {
            char lo[DURATION_STR_MAX], hi[DURATION_STR_MAX];

            return cfg_seterr(errbuf, errlen,
                              "%s: \"%.64s\" is not a duration in [%s, %s] (500ms, 10s, 2m; a "
                              "bare number is milliseconds)",
                              label, val, duration_format_ms(opt->min, lo, sizeof(lo)),
                              duration_format_ms(opt->max, hi, sizeof(hi)));
        }
        *(int *)(void *)((char *)cfg + opt->offset) = (int)ms;
        return 0;
    }
    case OPT_LOG_LEVEL:
        if (!log_level_parse(val, &cfg->log_level))
            return cfg_seterr(errbuf, errlen,
                              "%s: \"%.64s\" is not a log level (error, warn, info, debug)", label,
                              val);
        return 0;
    case OPT_LOG_FORMAT:
        if (!log_format_parse(val, &cfg->log_format))
            return cfg_seterr(errbuf, errlen, "%s: \"%.64s\" is not a log format (text, json)",
                              label, val);
        return 0;
    case OPT_OUTBOX:
        if (strcmp(val, "table") == 0)
            cfg->outbox_mode = STORE_OUTBOX_TABLE;
        else if (strcmp(val, "message") == 0)
            cfg->outbox_mode = STORE_OUTBOX_MESSAGE;
        else
            return cfg_seterr(errbuf, errlen,
                              "%s: \"%.64s\" is not an outbox mode (table, message)", label, val);
        return 0;
    case OPT_MIGRATE:
        if (strcmp(val, "true") == 0)
            cfg->action = CONFIG_ACTION_MIGRATE;
        return 0;
    case OPT_PRINT:
        cfg->print_config = strcmp(val, "true") == 0;
        return 0;
    case OPT_CONFIG:
    case OPT_HELP:
    case OPT_VERSION:
        break;
    }
    return 0;
}

int config_parse(struct config *cfg, int argc, char **argv, config_getenv_fn getenv_fn,
                 char *errbuf, size_t errlen)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->action = CONFIG_ACTION_SERVE;
    cfg->log_level = LOG_LEVEL_INFO;
    cfg->log_format = LOG_FORMAT_TEXT;

    if (cfg_parse(&cfg->set, opts, OPT_COUNT, argc, argv, getenv_fn, NULL, errbuf, errlen) != 0)
        return -1;
    if (cfg->set.action != NULL) {
        cfg->action =
            cfg->set.action->kind == OPT_HELP ? CONFIG_ACTION_HELP : CONFIG_ACTION_VERSION;
        return 0;
    }
    for (size_t i = 0; i < OPT_COUNT; i++) {
        const struct cfg_item *it = cfg_get(&cfg->set, &opts[i]);
        const char *val = it != NULL ? it->value : opts[i].def;
        char label[CONFIG_ERR_MAX];

        if (val == NULL)
            continue;
        if (apply(cfg, &opts[i], cfg_label(it, &opts[i], label, sizeof(label)), val, errbuf,
                  errlen) != 0)
            return -1;
    }
    return 0;
}

void config_fini(struct config *cfg)
{
    cfg_fini(&cfg->set);
}

void config_print(FILE *f, const struct config *cfg)
{
    cfg_print(f, &cfg->set);
}

void config_usage(FILE *f, const char *prog)
{
    fprintf(f, "usage: %s [options]\n\n", prog);
    fprintf(f, "Orders HTTP service: POST /orders writes the order and its OrderCreated\n"
               "outbox event in one transaction. A request with an Idempotency-Key header\n"
               "(1..255 printable ASCII characters) is answered once: a retry with the same\n"
               "key gets the first answer (Idempotent-Replayed: true) and writes nothing.\n"
               "Flags beat the environment, which beats the config file (--config), which\n"
               "beats the defaults; an empty variable counts as unset. In the file each\n"
               "option is a \"name = value\" line, name being the long option without --.\n"
               "DUR is a duration with a unit (500ms, 10s, 2m).\n\n");
    cfg_usage(f, opts, OPT_COUNT);
    fprintf(f, "\nExit status: 0 ok, 1 runtime error, 2 usage error.\n");
}
