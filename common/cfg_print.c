/*
 * --help and --print-config for both binaries, from the option tables and
 * the collected assignments of common/cfg.c. Never prints a secret.
 */
#include "cfg_print.h"

#include <string.h>

#include "log.h"

static void print_help_lines(FILE *f, const char *first, const char *help)
{
    /* A '\n' in the help text continues it on the next line, in the same column. */
    for (const char *h = help, *nl; h != NULL; h = nl != NULL ? nl + 1 : NULL) {
        nl = strchr(h, '\n');
        fprintf(f, "  %-24s %.*s\n", h == help ? first : "",
                nl != NULL ? (int)(nl - h) : (int)strlen(h), h);
    }
}

void cfg_usage(FILE *f, const struct cfg_opt *opts, size_t nopts)
{
    for (size_t i = 0; i < nopts; i++) {
        const struct cfg_opt *o = &opts[i];
        char flag[64];

        if (o->flags & CFG_KAFKA)
            snprintf(flag, sizeof(flag), "-%c %s", o->short_name, o->metavar);
        else if (o->short_name != 0)
            snprintf(flag, sizeof(flag), "-%c, --%s%s%s", o->short_name, o->name,
                     o->metavar != NULL ? " " : "", o->metavar != NULL ? o->metavar : "");
        else
            snprintf(flag, sizeof(flag), "--%s%s%s", o->name, o->metavar != NULL ? " " : "",
                     o->metavar != NULL ? o->metavar : "");
        print_help_lines(f, flag, o->help);
        if (o->flags & CFG_ACTION)
            continue;
        if (o->flags & CFG_KAFKA) {
            fprintf(f, "  %-24s file kafka.NAME = VALUE\n", "");
            continue;
        }
        if (o->env == NULL && (o->flags & CFG_CLI_ONLY)) {
            fprintf(f, "  %-24s command line only\n", "");
            continue;
        }
        fprintf(f, "  %-24s env %s, default %s%s\n", "", o->env != NULL ? o->env : "-",
                o->def != NULL ? o->def : "none",
                (o->flags & (CFG_CLI_ONLY | CFG_CONFIG)) ? " (not in the config file)" : "");
    }
}

static void print_source(FILE *f, const struct cfg_item *it)
{
    /* Never the flag as typed: "--database-url=postgresql://u:pw@h" holds the value. */
    if (it == NULL)
        fprintf(f, "  [default");
    else if (it->source == CFG_SOURCE_FILE)
        fprintf(f, "  [file %s:%d", it->origin, it->line);
    else if (it->source == CFG_SOURCE_ENV)
        fprintf(f, "  [env %s", it->origin);
    else if (it->opt->flags & CFG_KAFKA)
        fprintf(f, "  [flag -%c", it->opt->short_name);
    else
        fprintf(f, "  [flag --%s%s", it->opt->name, it->path != NULL ? "-file" : "");
    /* a value read from a file: which file (the path is no secret) */
    if (it != NULL && it->path != NULL)
        fprintf(f, " <- %s", it->path);
    fprintf(f, "]\n");
}

void cfg_print(FILE *f, const struct cfg_set *set)
{
    char masked[1024];

    for (size_t i = 0; i < set->nopts; i++) {
        const struct cfg_opt *o = &set->opts[i];
        const struct cfg_item *it;
        const char *v;

        if ((o->flags & (CFG_ACTION | CFG_KAFKA)) ||
            ((o->flags & CFG_CLI_ONLY) && o->metavar == NULL && o->env == NULL))
            continue; /* -X below; --help, --print-config, --migrate are not settings */
        it = cfg_get(set, o);
        v = it != NULL ? it->value : set->derived[i] != NULL ? set->derived[i] : o->def;
        if (v != NULL && (o->flags & CFG_SECRET_DSN))
            v = log_redact_dsn(v, masked, sizeof(masked));
        fprintf(f, "%s = %s", o->name, v != NULL ? v : "<unset>");
        print_source(f, it);
    }
    for (size_t i = 0; i < set->nitems; i++) {
        const struct cfg_item *it = &set->items[i];

        if (!(it->opt->flags & CFG_KAFKA))
            continue;
        fprintf(f, "kafka.%.*s = %s", (int)it->key_len, it->key,
                cfg_kafka_secret(it->key, it->key_len) ? "***" : it->value);
        print_source(f, it);
    }
}
