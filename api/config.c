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

enum opt_kind {
    OPT_DSN,       /* string, never echoed */
    OPT_LISTEN,    /* host:port */
    OPT_INT,       /* integer in [min, max] stored at offset */
    OPT_LOG_LEVEL, /* error|warn|info|debug */
    OPT_OUTBOX,    /* table|message */
    OPT_MIGRATE,   /* action flags: no value */
    OPT_HELP,
    OPT_VERSION,
};

struct opt_def {
    const char *flag;    /* "--pool-size" */
    const char *env;     /* "DB_POOL_SIZE", or NULL */
    const char *metavar; /* "N"; NULL for flags that take no value */
    const char *def;     /* default as text; NULL if none */
    enum opt_kind kind;
    size_t offset; /* OPT_INT: offsetof(struct config, field) */
    int min, max;  /* OPT_INT range */
    const char *help;
};

static const struct opt_def opts[] = {
    {"--database-url", "DATABASE_URL", "URL", NULL, OPT_DSN, 0, 0, 0,
     "PostgreSQL URI or key=value conninfo (required)"},
    {"--listen", "LISTEN_ADDR", "ADDR", "127.0.0.1:8080", OPT_LISTEN, 0, 0, 0,
     "IPv4:port or [IPv6]:port; port 0 picks a free port"},
    {"--pool-size", "DB_POOL_SIZE", "N", "8", OPT_INT, offsetof(struct config, pool_size), 1, 128,
     "database connections = HTTP worker threads (1..128)"},
    {"--db-timeout-ms", "DB_TIMEOUT_MS", "MS", "5000", OPT_INT,
     offsetof(struct config, db_timeout_ms), 100, 600000,
     "wait for a pooled connection, connect, and statement_timeout (100..600000)"},
    {"--log-level", "LOG_LEVEL", "LEVEL", "info", OPT_LOG_LEVEL, 0, 0, 0,
     "error, warn, info or debug"},
    {"--outbox-mode", "OUTBOX_MODE", "MODE", "table", OPT_OUTBOX, 0, 0, 0,
     "how the OrderCreated event is written: table (outbox row) or message\n"
     "(pg_logical_emit_message, prefix outbox; needs a relay in message mode)"},
    {"--migrate", NULL, NULL, NULL, OPT_MIGRATE, 0, 0, 0,
     "apply pending schema migrations and exit"},
    {"--help", NULL, NULL, NULL, OPT_HELP, 0, 0, 0, "print this help and exit"},
    {"--version", NULL, NULL, NULL, OPT_VERSION, 0, 0, 0, "print the version and exit"},
};

#define OPT_COUNT (sizeof(opts) / sizeof(opts[0]))

static int seterr(char *errbuf, size_t errlen, const char *fmt, ...) PRINTF_FMT(3, 4);

static int seterr(char *errbuf, size_t errlen, const char *fmt, ...)
{
    if (errlen > 0) {
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(errbuf, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static const struct opt_def *find_opt(const char *name, size_t len)
{
    for (size_t i = 0; i < OPT_COUNT; i++) {
        if (strlen(opts[i].flag) == len && strncmp(opts[i].flag, name, len) == 0)
            return &opts[i];
    }
    return NULL;
}

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
            return seterr(errbuf, errlen, "expected [IPv6]:port");
        hlen = (size_t)(close - s - 1);
        if (hlen == 0 || hlen >= sizeof(host))
            return seterr(errbuf, errlen, "bad IPv6 address");
        memcpy(host, s + 1, hlen);
        host[hlen] = '\0';
        if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1)
            return seterr(errbuf, errlen, "\"%s\" is not a numeric IPv6 address", host);
        if (parse_port(close + 2, &port) != 0)
            return seterr(errbuf, errlen, "port must be a number 0..65535");
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)port);
        *addr_len = sizeof(*sin6);
        return 0;
    }
    colon = strrchr(s, ':');
    if (colon == NULL || colon == s)
        return seterr(errbuf, errlen, "expected host:port (IPv4) or [host]:port (IPv6)");
    hlen = (size_t)(colon - s);
    if (hlen >= sizeof(host) || memchr(s, ':', hlen) != NULL)
        return seterr(errbuf, errlen, "IPv6 addresses need brackets: [host]:port");
    memcpy(host, s, hlen);
    host[hlen] = '\0';
    {
        struct sockaddr_in *sin = (struct sockaddr_in *)addr;

        if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
            return seterr(errbuf, errlen, "\"%.*s\" is not a numeric IPv4 address", 64, host);
        if (parse_port(colon + 1, &port) != 0)
            return seterr(errbuf, errlen, "port must be a number 0..65535");
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
static int apply(struct config *cfg, const struct opt_def *opt, const char *label, const char *val,
                 char *errbuf, size_t errlen)
{
    char why[CONFIG_ERR_MAX];

    switch (opt->kind) {
    case OPT_DSN:
        cfg->database_url = val;
        return 0;
    case OPT_LISTEN:
        if (strlen(val) >= sizeof(cfg->listen))
            return seterr(errbuf, errlen, "%s: address is too long", label);
        if (config_parse_listen(val, &cfg->listen_addr, &cfg->listen_addr_len, why, sizeof(why)) !=
            0)
            return seterr(errbuf, errlen, "%s: invalid address \"%.64s\": %s", label, val, why);
        memcpy(cfg->listen, val, strlen(val) + 1);
        return 0;
    case OPT_INT:
        if (parse_int(val, opt->min, opt->max, (int *)(void *)((char *)cfg + opt->offset)) != 0)
            return seterr(errbuf, errlen, "%s: \"%.64s\" is not an integer between %d and %d",
                          label, val, opt->min, opt->max);
        return 0;
    case OPT_LOG_LEVEL:
        if (!log_level_parse(val, &cfg->log_level))
            return seterr(errbuf, errlen,
                          "%s: \"%.64s\" is not a log level (error, warn, info, debug)", label,
                          val);
        return 0;
    case OPT_OUTBOX:
        if (strcmp(val, "table") == 0)
            cfg->outbox_mode = STORE_OUTBOX_TABLE;
        else if (strcmp(val, "message") == 0)
            cfg->outbox_mode = STORE_OUTBOX_MESSAGE;
        else
            return seterr(errbuf, errlen, "%s: \"%.64s\" is not an outbox mode (table, message)",
                          label, val);
        return 0;
    case OPT_MIGRATE:
    case OPT_HELP:
    case OPT_VERSION:
        break;
    }
    return 0;
}

int config_parse(struct config *cfg, int argc, char **argv, config_getenv_fn getenv_fn,
                 char *errbuf, size_t errlen)
{
    const char *raw[OPT_COUNT] = {NULL};
    const char *src[OPT_COUNT] = {NULL};

    memset(cfg, 0, sizeof(*cfg));
    cfg->action = CONFIG_ACTION_SERVE;
    cfg->log_level = LOG_LEVEL_INFO;

    for (size_t i = 0; i < OPT_COUNT; i++) {
        const char *v = opts[i].env != NULL ? getenv_fn(opts[i].env) : NULL;

        /* Empty means unset, so `FOO= cmd` cannot blank a default. */
        if (v != NULL && *v != '\0') {
            raw[i] = v;
            src[i] = opts[i].env;
        }
    }

    for (int a = 1; a < argc; a++) {
        const char *arg = argv[a], *eq, *val;
        const struct opt_def *opt;
        size_t i;

        if (strcmp(arg, "-h") == 0)
            arg = "--help";
        if (strncmp(arg, "--", 2) != 0 || arg[2] == '\0')
            return seterr(errbuf, errlen, "unexpected argument \"%.64s\"", arg);
        eq = strchr(arg, '=');
        opt = find_opt(arg, eq != NULL ? (size_t)(eq - arg) : strlen(arg));
        if (opt == NULL)
            return seterr(errbuf, errlen, "unknown option \"%.*s\"",
                          eq != NULL ? (int)(eq - arg) : 64, arg);
        i = (size_t)(opt - opts);
        if (opt->metavar == NULL) {
            if (eq != NULL)
                return seterr(errbuf, errlen, "%s takes no value", opt->flag);
            if (opt->kind == OPT_HELP) {
                cfg->action = CONFIG_ACTION_HELP;
                return 0;
            }
            if (opt->kind == OPT_VERSION) {
                cfg->action = CONFIG_ACTION_VERSION;
                return 0;
            }
            cfg->action = CONFIG_ACTION_MIGRATE;
            continue;
        }
        if (eq != NULL) {
            val = eq + 1;
        } else if (a + 1 < argc) {
            val = argv[++a];
        } else {
            return seterr(errbuf, errlen, "%s requires a value (%s)", opt->flag, opt->metavar);
        }
        raw[i] = val;
        src[i] = opt->flag;
    }

    for (size_t i = 0; i < OPT_COUNT; i++) {
        const char *val = raw[i] != NULL ? raw[i] : opts[i].def;

        if (opts[i].metavar == NULL || val == NULL)
            continue;
        if (apply(cfg, &opts[i], src[i] != NULL ? src[i] : "default", val, errbuf, errlen) != 0)
            return -1;
    }
    return 0;
}

void config_usage(FILE *f, const char *prog)
{
    fprintf(f, "usage: %s [options]\n\n", prog);
    fprintf(f, "Orders HTTP service: POST /orders writes the order and its OrderCreated\n"
               "outbox event in one transaction. A request with an Idempotency-Key header\n"
               "(1..255 printable ASCII characters) is answered once: a retry with the same\n"
               "key gets the first answer (Idempotent-Replayed: true) and writes nothing.\n"
               "Flags beat the environment, which beats the defaults; an empty variable\n"
               "counts as unset.\n\n");
    for (size_t i = 0; i < OPT_COUNT; i++) {
        char flag[64];

        snprintf(flag, sizeof(flag), "%s%s%s", opts[i].flag, opts[i].metavar != NULL ? " " : "",
                 opts[i].metavar != NULL ? opts[i].metavar : "");
        /* A '\n' in the help text continues it on the next line, in the same column. */
        for (const char *h = opts[i].help, *nl; h != NULL; h = nl != NULL ? nl + 1 : NULL) {
            nl = strchr(h, '\n');
            fprintf(f, "  %-22s %.*s\n", h == opts[i].help ? flag : "",
                    nl != NULL ? (int)(nl - h) : (int)strlen(h), h);
        }
        if (opts[i].env != NULL || opts[i].def != NULL)
            fprintf(f, "  %-22s env %s, default %s\n", "", opts[i].env != NULL ? opts[i].env : "-",
                    opts[i].def != NULL ? opts[i].def : "none");
    }
    fprintf(f, "\nExit status: 0 ok, 1 runtime error, 2 usage error.\n");
}
