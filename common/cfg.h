/*
 * Option tables shared by both binaries: one row per option gives its flag,
 * environment variable, config-file key, default and help, so --help, the
 * environment, the config file and --print-config cannot drift apart. This
 * module only collects raw text values with where they came from, under one
 * precedence rule (flag > environment > file > default); each binary
 * validates the winning values itself. libc only; never logs.
 */
#ifndef ORDERS_COMMON_CFG_H
#define ORDERS_COMMON_CFG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "compiler.h"

#define CFG_MAX_ITEMS     320 /* assignments kept from all sources (-X included) */
#define CFG_MAX_OPTS      128 /* rows in one table */
#define CFG_MAX_FILE_SIZE (1 << 20)
#define CFG_MAX_FILES     24   /* the config file, Kafka properties files, value files */
#define CFG_NAMES_MAX     4096 /* bytes of Kafka property names made from variables */
#define CFG_ERR_MAX       512

/* Row flags. */
#define CFG_SWITCH     0x01u /* no value on the command line; true/false in env and file */
#define CFG_ACTION     0x02u /* --help, --version: command line only, stop parsing */
#define CFG_CLI_ONLY   0x04u /* command line (and env, if it has one) only, never in a file */
#define CFG_SECRET_DSN 0x08u /* a libpq URI or conninfo: passwords masked when printed */
#define CFG_KAFKA                                                                                  \
    0x10u /* -X NAME=VALUE (or -XNAME=VALUE), repeatable; file key "kafka.NAME";                   \
           * -X file=PATH reads a properties file */
#define CFG_CONFIG     0x20u /* --config FILE itself */
#define CFG_KAFKA_FILE 0x40u /* --kafka-config FILE: a librdkafka properties file */
/* The value may come from a file: --NAME-file PATH, NAME_FILE (ENV_FILE),
 * NAME-file = PATH in the config file (a secret kept off the command line and
 * out of the environment, e.g. a systemd credential). */
#define CFG_FILE_FORM 0x80u

enum cfg_source { CFG_SOURCE_DEFAULT = 0, CFG_SOURCE_FILE, CFG_SOURCE_ENV, CFG_SOURCE_FLAG };

struct cfg_opt {
    const char *name;    /* long option without "--", and the config-file key */
    char short_name;     /* 'X', 'h', 'V', or 0 */
    const char *env;     /* environment variable, or NULL */
    const char *metavar; /* "N", "ADDR"; NULL for switches and actions */
    const char *def;     /* default as text, or NULL: none */
    unsigned flags;      /* CFG_* */
    int kind;            /* the binary's own value type; ignored here */
    size_t offset;       /* the binary's own field offset; ignored here */
    long min, max;       /* the binary's own range; ignored here */
    const char *help;    /* '\n' continues on the next line of --help */
};

/* One assignment: a flag, a variable or a file line. Strings are borrowed from
 * argv, the environment or the set's file text. */
struct cfg_item {
    const struct cfg_opt *opt;
    enum cfg_source source;
    const char *origin; /* flag as typed ("--slot", "-X"), variable name, or file path */
    int line;           /* file line, 1-based; 0 otherwise */
    const char *key;    /* CFG_KAFKA: property name (key_len bytes, not NUL-terminated) */
    size_t key_len;
    const char *value; /* NUL-terminated; switches are normalised to "true"/"false" */
    const char *path;  /* the file the value was read from (CFG_FILE_FORM, CDC_KAFKA_*_FILE) */
};

struct cfg_set {
    const struct cfg_opt *opts;
    size_t nopts;
    const struct cfg_opt *action; /* the CFG_ACTION row given, or NULL */
    struct cfg_item items[CFG_MAX_ITEMS];
    size_t nitems;                     /* sorted by source, then by order of appearance */
    const char *derived[CFG_MAX_OPTS]; /* by row: default computed by the binary, or NULL */
    char *texts[CFG_MAX_FILES];        /* owned: files read, cut into keys and values */
    size_t ntexts;
    /* -X file=PATH flags, in order (path borrowed from argv) */
    const char *kafka_files[CFG_MAX_FILES];
    size_t nkafka_files;
    char names[CFG_NAMES_MAX]; /* property names made from CDC_KAFKA_* variables */
    size_t names_len;
};

/* Reads one environment variable; returns NULL if unset. getenv() fits. */
typedef char *(*cfg_getenv_fn)(const char *name);

/*
 * Fills *set from argv[1..argc) ("--name value", "--name=value", "-X value",
 * "-Xvalue"), then the config file named by the CFG_CONFIG row (flag, else
 * its variable), then the environment (an empty variable counts as unset),
 * then the Kafka properties files: the CFG_KAFKA_FILE row's, then each
 * -X file=PATH in order. A CFG_FILE_FORM row's file is read where it is named
 * (its trailing newlines dropped; an empty file counts as unset). When the
 * CFG_KAFKA row has an env (a prefix, "CDC_KAFKA_"), every variable of envp
 * (NAME=VALUE strings, NULL-terminated; may be NULL) that starts with it,
 * other than a row's own variable, is a Kafka property (cfg_kafka_env_name),
 * and PREFIX..._FILE names a file holding the value. A CFG_ACTION flag stops
 * parsing at once and is returned in set->action. The caller must call
 * cfg_fini even when this fails.
 * @returns 0, or -1 with a message naming the option (and file:line) and the
 * reason in errbuf. Reads the config file; not thread-safe with setenv.
 */
int cfg_parse(struct cfg_set *set, const struct cfg_opt *opts, size_t nopts, int argc, char **argv,
              cfg_getenv_fn getenv_fn, char *const *envp, char *errbuf, size_t errlen) MUSTCHECK;

/*
 * The librdkafka property a variable's name stands for, after the prefix:
 * lower-cased, "_" is ".", "__" is "_", "___" is "-" (Confluent's images'
 * rule), so SASL_PASSWORD is sasl.password. Writes it NUL-terminated into
 * out; false when it is empty, has a run of more than three '_', or a
 * character other than [A-Za-z0-9_], or does not fit. Pure.
 */
bool cfg_kafka_env_name(const char *suffix, size_t len, char *out, size_t outlen);

/*
 * Parses config-file text (pure, no I/O): "name = value" lines, '#' comment
 * lines, blank lines; "kafka.NAME = VALUE" for the CFG_KAFKA row. Takes
 * ownership of text (heap, freed by cfg_fini) and cuts it in place; path is
 * borrowed and only used in messages. @returns 0 or -1 with "path:line: ..."
 * in errbuf.
 */
int cfg_parse_text(struct cfg_set *set, const char *path, char *text, char *errbuf,
                   size_t errlen) MUSTCHECK;

/*
 * Parses a librdkafka properties file (pure, no I/O), kcat's format:
 * "name=value" lines (spaces around both ignored), '#' comment lines, blank
 * lines; "\=" and "\:" (Java properties escapes) stand for '=' and ':'.
 * Each line becomes a CFG_KAFKA item from the file (path:line), applied in
 * order: a later line wins. Takes ownership of text. @returns 0 or -1 with
 * "path:line: ..." in errbuf.
 */
int cfg_parse_properties(struct cfg_set *set, const char *path, char *text, char *errbuf,
                         size_t errlen) MUSTCHECK;

/* Frees what the set owns (the file texts). NULL-safe. */
void cfg_fini(struct cfg_set *set);

/* The winning assignment of a single-valued row (highest source, then the
 * last one given), or NULL: the default applies. */
const struct cfg_item *cfg_get(const struct cfg_set *set, const struct cfg_opt *opt);

/* The winning value text, or the row's default (may be NULL). */
const char *cfg_value(const struct cfg_set *set, const struct cfg_opt *opt);

/* "--slot", "CDC_SLOT", "relay.conf:3: slot", or "default": where a value
 * came from, for error messages. item NULL means the default. Returns buf. */
const char *cfg_label(const struct cfg_item *item, const struct cfg_opt *opt, char *buf,
                      size_t len);

/* Records the value a default turned into (e.g. a path built from another
 * option) so that --print-config shows it; value is borrowed. */
void cfg_set_derived(struct cfg_set *set, const struct cfg_opt *opt, const char *value);

/* Parses true/false/yes/no/on/off/1/0. */
bool cfg_parse_bool(const char *s, bool *out);

/* True for librdkafka property names that hold secrets (passwords, secrets,
 * private keys), whose values --print-config masks. */
bool cfg_kafka_secret(const char *name, size_t len);

/* Formats an error into errbuf (when errlen > 0) and returns -1, so a
 * validator can `return cfg_seterr(...)`. */
int cfg_seterr(char *errbuf, size_t errlen, const char *fmt, ...) PRINTF_FMT(3, 4);

#endif
