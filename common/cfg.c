/*
 * Option collection for both binaries (see cfg.h): command line, config file
 * and environment into one list of raw assignments, with where each came
 * from. Values are never interpreted here beyond switches, so the binaries
 * keep their own validation and error wording. Never logs, never echoes a
 * value in an error (a value may be a password).
 */
#include "cfg.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

int cfg_seterr(char *errbuf, size_t errlen, const char *fmt, ...)
{
    if (errlen > 0) {
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(errbuf, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

bool cfg_parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};

    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (strcmp(s, yes[i]) == 0) {
            *out = true;
            return true;
        }
        if (strcmp(s, no[i]) == 0) {
            *out = false;
            return true;
        }
    }
    return false;
}

bool cfg_kafka_secret(const char *name, size_t len)
{
    /* librdkafka 2.0.2's sensitive properties (CONFIGURATION.md):
     * sasl.password, ssl.key.password, ssl.keystore.password, ssl.key.pem,
     * sasl.oauthbearer.client.secret, sasl.oauthbearer.config (may carry a
     * token), sasl.jaas.config (a Java client's, holds a password; librdkafka
     * refuses it, and its error must not show it), and a misspelling of any
     * of them: masking one harmless value
     * costs less than printing one password. The relay's log scrubbing uses
     * this same list (sink_prop_is_secret). */
    static const char *const parts[] = {"pass",  "pasw", "secret", "pem", "oauthbearer.config",
                                        "token", "jaas"};
    char buf[256];

    if (len >= sizeof(buf))
        return true; /* too long to inspect: mask rather than guess */
    memcpy(buf, name, len);
    buf[len] = '\0';
    for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
        if (strstr(buf, parts[i]) != NULL)
            return true;
    }
    return false;
}

static const struct cfg_opt *find_long(const struct cfg_set *set, const char *name, size_t len)
{
    for (size_t i = 0; i < set->nopts; i++) {
        const struct cfg_opt *o = &set->opts[i];

        if (!(o->flags & CFG_KAFKA) && strlen(o->name) == len && strncmp(o->name, name, len) == 0)
            return o;
    }
    return NULL;
}

static const struct cfg_opt *find_short(const struct cfg_set *set, char c)
{
    for (size_t i = 0; i < set->nopts; i++) {
        if (c != 0 && set->opts[i].short_name == c)
            return &set->opts[i];
    }
    return NULL;
}

static const struct cfg_opt *find_flag(const struct cfg_set *set, unsigned flag)
{
    for (size_t i = 0; i < set->nopts; i++) {
        if (set->opts[i].flags & flag)
            return &set->opts[i];
    }
    return NULL;
}

static const struct cfg_opt *find_kafka(const struct cfg_set *set)
{
    return find_flag(set, CFG_KAFKA);
}

/* "database-url-file": the CFG_FILE_FORM row named by what precedes "-file". */
static const struct cfg_opt *find_file_form(const struct cfg_set *set, const char *name, size_t len)
{
    const struct cfg_opt *o;

    if (len <= 5 || strncmp(name + len - 5, "-file", 5) != 0)
        return NULL;
    o = find_long(set, name, len - 5);
    return o != NULL && (o->flags & CFG_FILE_FORM) ? o : NULL;
}

/* Copies len bytes of s into the set's name arena; NULL when it is full. */
static const char *keep_name(struct cfg_set *set, const char *s, size_t len)
{
    char *p;

    if (set->names_len + len + 1 > sizeof(set->names))
        return NULL;
    p = set->names + set->names_len;
    memcpy(p, s, len);
    p[len] = '\0';
    set->names_len += len + 1;
    return p;
}

/* Keeps text (heap) until cfg_fini; frees it and fails when full. */
static int own_text(struct cfg_set *set, char *text, const char *path, char *errbuf, size_t errlen)
{
    if (set->ntexts == CFG_MAX_FILES) {
        free(text);
        return cfg_seterr(errbuf, errlen, "%s: more than %d files", path, CFG_MAX_FILES);
    }
    set->texts[set->ntexts++] = text;
    return 0;
}

static struct cfg_item *add_item(struct cfg_set *set, const struct cfg_opt *opt,
                                 enum cfg_source source, const char *origin, int line, char *errbuf,
                                 size_t errlen)
{
    struct cfg_item *it;

    if (set->nitems == CFG_MAX_ITEMS) {
        cfg_seterr(errbuf, errlen, "more than %d settings", CFG_MAX_ITEMS);
        return NULL;
    }
    it = &set->items[set->nitems++];
    memset(it, 0, sizeof(*it));
    it->opt = opt;
    it->source = source;
    it->origin = origin;
    it->line = line;
    return it;
}

/* "NAME=VALUE" for -X. */
static int split_kafka(struct cfg_item *it, const char *v, const char *label, char *errbuf,
                       size_t errlen)
{
    const char *eq = strchr(v, '=');

    if (eq == NULL || eq == v)
        return cfg_seterr(errbuf, errlen, "%s expects NAME=VALUE", label);
    it->key = v;
    it->key_len = (size_t)(eq - v);
    it->value = eq + 1;
    return 0;
}

static int parse_argv(struct cfg_set *set, int argc, char **argv, char *errbuf, size_t errlen)
{
    for (int a = 1; a < argc; a++) {
        const char *arg = argv[a], *eq = NULL, *val;
        const struct cfg_opt *opt;
        struct cfg_item *it;
        bool file_form = false;

        if (arg[0] == '-' && arg[1] != '-' && arg[1] != '\0') {
            opt = find_short(set, arg[1]);
            if (opt == NULL)
                return cfg_seterr(errbuf, errlen, "unexpected argument \"%.64s\"", arg);
            /* -Xname=value: the value attached, as getopt allows (kcat's -X). */
            if (arg[2] != '\0') {
                if (opt->metavar == NULL)
                    return cfg_seterr(errbuf, errlen, "unexpected argument \"%.64s\"", arg);
                eq = arg + 1; /* the value starts at eq + 1 */
            }
        } else if (strncmp(arg, "--", 2) == 0 && arg[2] != '\0') {
            size_t nlen;

            eq = strchr(arg, '=');
            nlen = eq != NULL ? (size_t)(eq - arg - 2) : strlen(arg + 2);
            opt = find_long(set, arg + 2, nlen);
            if (opt == NULL && (opt = find_file_form(set, arg + 2, nlen)) != NULL)
                file_form = true;
            if (opt == NULL)
                return cfg_seterr(errbuf, errlen, "unknown option \"%.*s\"",
                                  eq != NULL ? (int)(eq - arg) : 64, arg);
        } else {
            return cfg_seterr(errbuf, errlen, "unexpected argument \"%.64s\"", arg);
        }
        if (opt->flags & CFG_ACTION) {
            if (eq != NULL)
                return cfg_seterr(errbuf, errlen, "--%s takes no value", opt->name);
            set->action = opt;
            return 0;
        }
        if (opt->metavar == NULL) {
            if (eq != NULL)
                return cfg_seterr(errbuf, errlen, "--%s takes no value", opt->name);
            val = "true";
        } else if (eq != NULL) {
            val = eq + 1;
        } else if (a + 1 < argc) {
            val = argv[++a];
        } else if (opt->flags & CFG_KAFKA) {
            return cfg_seterr(errbuf, errlen, "%s requires a value (%s)", arg, opt->metavar);
        } else {
            return cfg_seterr(errbuf, errlen, "--%s requires a value (%s)", opt->name,
                              opt->metavar);
        }
        if ((opt->flags & CFG_KAFKA) && strncmp(val, "file=", 5) == 0) {
            if (val[5] == '\0')
                return cfg_seterr(errbuf, errlen, "-%c file= needs a PATH", opt->short_name);
            if (set->nkafka_files == CFG_MAX_FILES)
                return cfg_seterr(errbuf, errlen, "more than %d -%c file= flags", CFG_MAX_FILES,
                                  opt->short_name);
            set->kafka_files[set->nkafka_files++] = val + 5;
            continue;
        }
        it = add_item(set, opt, CFG_SOURCE_FLAG, opt->flags & CFG_KAFKA ? "-X" : arg, 0, errbuf,
                      errlen);
        if (it == NULL)
            return -1;
        if (opt->flags & CFG_KAFKA) {
            if (split_kafka(it, val, "-X", errbuf, errlen) != 0)
                return -1;
        } else if (file_form) {
            it->path = val; /* read by resolve_files */
        } else {
            it->value = val;
        }
    }
    return 0;
}

static char *trim(char *s, char *end)
{
    while (s < end && (*s == ' ' || *s == '\t'))
        s++;
    while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
        end--;
    *end = '\0';
    return s;
}

static bool same_key(const struct cfg_item *a, const struct cfg_item *b)
{
    if (a->opt != b->opt)
        return false;
    if (!(a->opt->flags & CFG_KAFKA))
        return true;
    return a->key_len == b->key_len && memcmp(a->key, b->key, a->key_len) == 0;
}

int cfg_parse_text(struct cfg_set *set, const char *path, char *text, char *errbuf, size_t errlen)
{
    const struct cfg_opt *kafka = find_kafka(set);
    size_t first = set->nitems;
    char *p = text;
    int line = 0;

    if (own_text(set, text, path, errbuf, errlen) != 0)
        return -1;
    while (*p != '\0') {
        char *nl = strchr(p, '\n'), *end = nl != NULL ? nl : p + strlen(p), *key, *val, *eq;
        const struct cfg_opt *opt;
        struct cfg_item *it;
        bool b, file_form = false;

        line++;
        key = trim(p, end);
        p = nl != NULL ? nl + 1 : end;
        if (*key == '\0' || *key == '#')
            continue;
        eq = strchr(key, '=');
        if (eq == NULL)
            return cfg_seterr(errbuf, errlen, "%s:%d: expected \"name = value\"", path, line);
        val = trim(eq + 1, eq + 1 + strlen(eq + 1));
        key = trim(key, eq);
        if (*key == '\0')
            return cfg_seterr(errbuf, errlen, "%s:%d: expected \"name = value\"", path, line);
        if (kafka != NULL && strncmp(key, "kafka.", 6) == 0 && key[6] != '\0') {
            opt = kafka;
        } else {
            opt = find_long(set, key, strlen(key));
            if (opt == NULL && (opt = find_file_form(set, key, strlen(key))) != NULL)
                file_form = true;
            if (opt == NULL)
                return cfg_seterr(errbuf, errlen, "%s:%d: unknown option \"%.64s\"", path, line,
                                  key);
            if (opt->flags & (CFG_ACTION | CFG_CLI_ONLY | CFG_CONFIG | CFG_KAFKA))
                return cfg_seterr(errbuf, errlen,
                                  "%s:%d: \"%s\" cannot be set in a config file, only on the "
                                  "command line",
                                  path, line, key);
        }
        if (*val == '\0')
            return cfg_seterr(errbuf, errlen,
                              "%s:%d: %s: empty value (leave the line out for the "
                              "default)",
                              path, line, key);
        it = add_item(set, opt, CFG_SOURCE_FILE, path, line, errbuf, errlen);
        if (it == NULL)
            return -1;
        it->value = val;
        if (opt == kafka) {
            it->key = key + 6;
            it->key_len = strlen(key + 6);
        } else if (file_form) {
            it->path = val; /* read by resolve_files, after the text is parsed */
            it->value = NULL;
        } else if (opt->metavar == NULL) {
            if (!cfg_parse_bool(val, &b))
                return cfg_seterr(errbuf, errlen, "%s:%d: %s: \"%.64s\" is not true or false", path,
                                  line, key, val);
            it->value = b ? "true" : "false";
        }
        for (size_t i = first; i + 1 < set->nitems; i++) {
            if (same_key(&set->items[i], it))
                return cfg_seterr(errbuf, errlen, "%s:%d: %s: already set on line %d", path, line,
                                  key, set->items[i].line);
        }
    }
    return 0;
}

int cfg_parse_properties(struct cfg_set *set, const char *path, char *text, char *errbuf,
                         size_t errlen)
{
    const struct cfg_opt *kafka = find_kafka(set);
    char *p = text;
    int line = 0;

    if (own_text(set, text, path, errbuf, errlen) != 0)
        return -1;
    if (kafka == NULL)
        return cfg_seterr(errbuf, errlen, "%s: no Kafka properties here", path);
    while (*p != '\0') {
        char *nl = strchr(p, '\n'), *end = nl != NULL ? nl : p + strlen(p), *key, *val, *eq;
        struct cfg_item *it;

        line++;
        key = trim(p, end);
        p = nl != NULL ? nl + 1 : end;
        if (*key == '\0' || *key == '#')
            continue;
        /* "\=" and "\:" as in Java properties files (and kcat): the backslash
         * goes; the name ends at the first '=' that is left. */
        for (char *r = key, *w = key;; r++) {
            if (*r == '\\' && (r[1] == '=' || r[1] == ':'))
                r++;
            *w++ = *r;
            if (*r == '\0')
                break;
        }
        eq = strchr(key, '=');
        if (eq == NULL || eq == key)
            return cfg_seterr(errbuf, errlen, "%s:%d: expected property=value", path, line);
        val = trim(eq + 1, eq + 1 + strlen(eq + 1));
        key = trim(key, eq);
        if (*key == '\0')
            return cfg_seterr(errbuf, errlen, "%s:%d: expected property=value", path, line);
        it = add_item(set, kafka, CFG_SOURCE_FILE, path, line, errbuf, errlen);
        if (it == NULL)
            return -1;
        it->key = key;
        it->key_len = strlen(key);
        it->value = val;
    }
    return 0;
}

/* Reads a whole file (at most CFG_MAX_FILE_SIZE, no NUL bytes) into a new
 * string; what names the kind of file in messages. NULL with errbuf set. */
static char *read_file(const char *path, const char *label, const char *what, char *errbuf,
                       size_t errlen)
{
    FILE *f = fopen(path, "r");
    char *text;
    size_t n;

    if (f == NULL) {
        cfg_seterr(errbuf, errlen, "%s: cannot open %s \"%s\": %s", label, what, path,
                   strerror(errno));
        return NULL;
    }
    text = malloc(CFG_MAX_FILE_SIZE + 1);
    if (text == NULL) {
        fclose(f);
        cfg_seterr(errbuf, errlen, "%s: out of memory", label);
        return NULL;
    }
    n = fread(text, 1, CFG_MAX_FILE_SIZE + 1, f);
    if (ferror(f) || n > CFG_MAX_FILE_SIZE) {
        int saved = errno;

        fclose(f);
        free(text);
        cfg_seterr(errbuf, errlen, "%s: cannot read %s \"%s\": %s", label, what, path,
                   n > CFG_MAX_FILE_SIZE ? "larger than 1 MiB" : strerror(saved));
        return NULL;
    }
    fclose(f);
    text[n] = '\0';
    if (memchr(text, '\0', n) != NULL) {
        free(text);
        cfg_seterr(errbuf, errlen, "%s: %s \"%s\" contains a NUL byte", label, what, path);
        return NULL;
    }
    return text;
}

static int load_file(struct cfg_set *set, const char *path, const char *label, char *errbuf,
                     size_t errlen)
{
    char *text = read_file(path, label, "config file", errbuf, errlen);

    return text != NULL ? cfg_parse_text(set, path, text, errbuf, errlen) : -1;
}

static int load_properties(struct cfg_set *set, const char *path, const char *label, char *errbuf,
                           size_t errlen)
{
    char *text = read_file(path, label, "Kafka properties file", errbuf, errlen);

    return text != NULL ? cfg_parse_properties(set, path, text, errbuf, errlen) : -1;
}

/* --kafka-config's file (its winning value), then each -X file=, in order. */
static int load_kafka_files(struct cfg_set *set, char *errbuf, size_t errlen)
{
    const struct cfg_opt *row = find_flag(set, CFG_KAFKA_FILE);
    const struct cfg_item *it = row != NULL ? cfg_get(set, row) : NULL;
    char label[CFG_ERR_MAX];

    if (it != NULL && load_properties(set, it->value, cfg_label(it, row, label, sizeof(label)),
                                      errbuf, errlen) != 0)
        return -1;
    for (size_t i = 0; i < set->nkafka_files; i++)
        if (load_properties(set, set->kafka_files[i], "-X file=", errbuf, errlen) != 0)
            return -1;
    return 0;
}

/* ENV_FILE for a CFG_FILE_FORM row: an item whose value resolve_files reads. */
static int read_env_file_form(struct cfg_set *set, const struct cfg_opt *opt,
                              cfg_getenv_fn getenv_fn, char *errbuf, size_t errlen)
{
    char name[256];
    const char *var, *v;
    struct cfg_item *it;

    snprintf(name, sizeof(name), "%s_FILE", opt->env);
    v = getenv_fn(name);
    if (v == NULL || *v == '\0')
        return 0;
    if ((var = keep_name(set, name, strlen(name))) == NULL)
        return cfg_seterr(errbuf, errlen, "%s: too many variable names", name);
    it = add_item(set, opt, CFG_SOURCE_ENV, var, 0, errbuf, errlen);
    if (it == NULL)
        return -1;
    it->path = v;
    return 0;
}

bool cfg_kafka_env_name(const char *suffix, size_t len, char *out, size_t outlen)
{
    size_t n = 0;

    if (len == 0)
        return false;
    for (size_t i = 0; i < len;) {
        char c = suffix[i], put;

        if (c == '_') {
            size_t run = 0;

            while (i + run < len && suffix[i + run] == '_')
                run++;
            if (run > 3)
                return false;
            put = run == 1 ? '.' : run == 2 ? '_' : '-';
            i += run;
        } else if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
            put = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
            i++;
        } else {
            return false;
        }
        if (n + 1 >= outlen)
            return false;
        out[n++] = put;
    }
    out[n] = '\0';
    return true;
}

/* True when name (len bytes) is some row's own variable, or its _FILE form. */
static bool row_variable(const struct cfg_set *set, const char *name, size_t len)
{
    for (size_t i = 0; i < set->nopts; i++) {
        const char *env = set->opts[i].env;
        size_t elen = env != NULL ? strlen(env) : 0;

        if (env == NULL || (set->opts[i].flags & CFG_KAFKA))
            continue;
        if ((len == elen || (len == elen + 5 && memcmp(name + elen, "_FILE", 5) == 0)) &&
            memcmp(name, env, elen) == 0)
            return true;
    }
    return false;
}

/*
 * Kafka properties from the environment: PREFIX<NAME>=VALUE, or
 * PREFIX<NAME>_FILE=PATH (the value read by resolve_files). The variable
 * name is the item's origin, the property its key.
 */
static int read_kafka_env(struct cfg_set *set, char *const *envp, char *errbuf, size_t errlen)
{
    const struct cfg_opt *kafka = find_kafka(set);
    size_t plen;

    if (kafka == NULL || kafka->env == NULL || envp == NULL)
        return 0;
    plen = strlen(kafka->env);
    for (char *const *e = envp; *e != NULL; e++) {
        const char *eq = strchr(*e, '='), *var, *key;
        size_t nlen = eq != NULL ? (size_t)(eq - *e) : 0, klen;
        bool from_file;
        char prop[256];
        struct cfg_item *it;

        if (eq == NULL || nlen <= plen || strncmp(*e, kafka->env, plen) != 0 ||
            row_variable(set, *e, nlen) || eq[1] == '\0')
            continue;
        klen = nlen - plen;
        from_file = klen > 5 && memcmp(*e + nlen - 5, "_FILE", 5) == 0;
        if (from_file)
            klen -= 5;
        if (!cfg_kafka_env_name(*e + plen, klen, prop, sizeof(prop)))
            return cfg_seterr(errbuf, errlen,
                              "%.*s: not a librdkafka property name in the %s<NAME> form "
                              "(letters, digits, and _ for '.', __ for '_', ___ for '-')",
                              (int)(nlen > 128 ? 128 : nlen), *e, kafka->env);
        if ((var = keep_name(set, *e, nlen)) == NULL ||
            (key = keep_name(set, prop, strlen(prop))) == NULL)
            return cfg_seterr(errbuf, errlen, "more than %d bytes of %s variable names",
                              CFG_NAMES_MAX, kafka->env);
        it = add_item(set, kafka, CFG_SOURCE_ENV, var, 0, errbuf, errlen);
        if (it == NULL)
            return -1;
        it->key = key;
        it->key_len = strlen(key);
        if (from_file)
            it->path = eq + 1;
        else
            it->value = eq + 1;
    }
    return 0;
}

static int read_env(struct cfg_set *set, cfg_getenv_fn getenv_fn, char *errbuf, size_t errlen)
{
    for (size_t i = 0; i < set->nopts; i++) {
        const struct cfg_opt *opt = &set->opts[i];
        const char *v;
        struct cfg_item *it;
        bool b;

        if (opt->env == NULL || (opt->flags & (CFG_ACTION | CFG_KAFKA | CFG_CONFIG)))
            continue;
        if ((opt->flags & CFG_FILE_FORM) &&
            read_env_file_form(set, opt, getenv_fn, errbuf, errlen) != 0)
            return -1;
        v = getenv_fn(opt->env);
        /* Empty means unset, so `FOO= cmd` cannot blank a default (kcat's kc_getenv). */
        if (v == NULL || *v == '\0')
            continue;
        if (opt->metavar == NULL) {
            if (!cfg_parse_bool(v, &b))
                return cfg_seterr(errbuf, errlen, "%s: \"%.64s\" is not true or false", opt->env,
                                  v);
            v = b ? "true" : "false";
        }
        it = add_item(set, opt, CFG_SOURCE_ENV, opt->env, 0, errbuf, errlen);
        if (it == NULL)
            return -1;
        it->value = v;
    }
    return 0;
}

/*
 * Reads every value given as a file (path set, value NULL): the whole file,
 * trailing newlines dropped, so a secret written with `echo` or by
 * systemd-creds works. An empty file counts as unset, like an empty
 * variable: its item is dropped. Then two variables for one setting
 * (DATABASE_URL and DATABASE_URL_FILE, or two spellings of one Kafka
 * property) are an error: which one is meant is not clear.
 */
static int resolve_files(struct cfg_set *set, char *errbuf, size_t errlen)
{
    size_t kept = 0;

    for (size_t i = 0; i < set->nitems; i++) {
        struct cfg_item *it = &set->items[i];

        if (it->path != NULL && it->value == NULL) {
            char label[CFG_ERR_MAX], *text;
            size_t n;

            if (it->source == CFG_SOURCE_FILE)
                snprintf(label, sizeof(label), "%s:%d: %s-file", it->origin, it->line,
                         it->opt->name);
            else
                snprintf(label, sizeof(label), "%s", it->origin);
            text = read_file(it->path, label, "value file", errbuf, errlen);
            if (text == NULL || own_text(set, text, label, errbuf, errlen) != 0)
                return -1;
            n = strlen(text);
            while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == '\r'))
                text[--n] = '\0';
            if (n == 0)
                continue; /* empty: unset */
            it->value = text;
        }
        set->items[kept++] = *it;
    }
    set->nitems = kept;
    for (size_t i = 0; i < set->nitems; i++) {
        for (size_t j = i + 1; j < set->nitems; j++) {
            const struct cfg_item *a = &set->items[i], *b = &set->items[j];

            if (a->source == CFG_SOURCE_ENV && b->source == CFG_SOURCE_ENV && same_key(a, b))
                return cfg_seterr(errbuf, errlen, "%s and %s are both set: keep one", a->origin,
                                  b->origin);
        }
    }
    return 0;
}

/* Stable: keeps the order of appearance within one source. */
static void sort_items(struct cfg_set *set)
{
    for (size_t i = 1; i < set->nitems; i++) {
        struct cfg_item it = set->items[i];
        size_t j = i;

        while (j > 0 && set->items[j - 1].source > it.source) {
            set->items[j] = set->items[j - 1];
            j--;
        }
        set->items[j] = it;
    }
}

int cfg_parse(struct cfg_set *set, const struct cfg_opt *opts, size_t nopts, int argc, char **argv,
              cfg_getenv_fn getenv_fn, char *const *envp, char *errbuf, size_t errlen)
{
    const struct cfg_opt *config = NULL;
    const char *path = NULL, *label = NULL;
    char flag[64];

    memset(set, 0, sizeof(*set));
    if (nopts > CFG_MAX_OPTS)
        return cfg_seterr(errbuf, errlen, "more than %d options in the table", CFG_MAX_OPTS);
    set->opts = opts;
    set->nopts = nopts;
    if (parse_argv(set, argc, argv, errbuf, errlen) != 0)
        return -1;
    if (set->action != NULL)
        return 0;
    for (size_t i = 0; i < nopts; i++) {
        if (opts[i].flags & CFG_CONFIG)
            config = &opts[i];
    }
    if (config != NULL) {
        const struct cfg_item *it = cfg_get(set, config);

        if (it != NULL) {
            snprintf(flag, sizeof(flag), "--%s", config->name);
            path = it->value;
            label = flag;
        } else if (config->env != NULL) {
            path = getenv_fn(config->env);
            label = config->env;
            if (path != NULL && *path != '\0') {
                struct cfg_item *env_it =
                    add_item(set, config, CFG_SOURCE_ENV, config->env, 0, errbuf, errlen);

                if (env_it == NULL)
                    return -1;
                env_it->value = path;
            }
        }
    }
    if (path != NULL && *path != '\0' && load_file(set, path, label, errbuf, errlen) != 0)
        return -1;
    if (read_env(set, getenv_fn, errbuf, errlen) != 0 ||
        read_kafka_env(set, envp, errbuf, errlen) != 0 ||
        load_kafka_files(set, errbuf, errlen) != 0 || resolve_files(set, errbuf, errlen) != 0)
        return -1;
    sort_items(set);
    return 0;
}

void cfg_set_derived(struct cfg_set *set, const struct cfg_opt *opt, const char *value)
{
    set->derived[opt - set->opts] = value;
}

void cfg_fini(struct cfg_set *set)
{
    if (set == NULL)
        return;
    for (size_t i = 0; i < set->ntexts; i++)
        free(set->texts[i]);
    set->ntexts = 0;
}

const struct cfg_item *cfg_get(const struct cfg_set *set, const struct cfg_opt *opt)
{
    const struct cfg_item *best = NULL;

    for (size_t i = 0; i < set->nitems; i++) {
        const struct cfg_item *it = &set->items[i];

        if (it->opt == opt && (best == NULL || it->source >= best->source))
            best = it;
    }
    return best;
}

const char *cfg_value(const struct cfg_set *set, const struct cfg_opt *opt)
{
    const struct cfg_item *it = cfg_get(set, opt);

    return it != NULL ? it->value : opt->def;
}

const char *cfg_label(const struct cfg_item *item, const struct cfg_opt *opt, char *buf, size_t len)
{
    if (item == NULL)
        snprintf(buf, len, "default");
    else if (item->source == CFG_SOURCE_FILE)
        snprintf(buf, len, "%s:%d: %s", item->origin, item->line, opt->name);
    else if (item->source == CFG_SOURCE_FLAG && !(opt->flags & CFG_KAFKA))
        snprintf(buf, len, "--%s", opt->name);
    else
        snprintf(buf, len, "%s", item->origin);
    return buf;
}
