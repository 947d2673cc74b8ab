/*
 * One-line stderr logging, the same for both binaries. Text:
 * "2026-11-26T23:00:00.123Z level msg key=value ..."; JSON (--log-format
 * json): one object a line, {"ts","level","msg", fields...}. The message is a
 * short lower-case phrase for a person; values a script reads go in fields.
 * Under journald (JOURNAL_STREAM names stderr) each line starts with its
 * syslog priority, "<3>" ... "<7>", so `journalctl -p` can filter.
 * Thread-safe (each line is written with a single write). Never call from a
 * signal handler, and never pass a password or a whole conninfo string
 * (log_redact_dsn makes one printable).
 */
#ifndef ORDERS_COMMON_LOG_H
#define ORDERS_COMMON_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "compiler.h"

enum log_level { LOG_LEVEL_ERROR, LOG_LEVEL_WARN, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG };

enum log_format { LOG_FORMAT_TEXT, LOG_FORMAT_JSON };

/* Process-wide threshold and format; set once at startup before threads start. */
extern enum log_level log_threshold;
extern enum log_format log_output;
/* Prefix lines with "<N>" (syslog priority); set by log_detect_journal. */
extern bool log_journal;

/*
 * Whether a JOURNAL_STREAM value ("DEV:INO", decimal, as systemd sets it for
 * a service whose stderr is the journal) names the file with this device and
 * inode. Pure; false for NULL or anything malformed.
 */
bool log_journal_stream_is(const char *journal_stream, unsigned long long dev,
                           unsigned long long ino);

/* Sets log_journal when stderr is the journal: JOURNAL_STREAM matches
 * stderr's device and inode (a redirected stderr keeps the variable but not
 * the inode, so it gets no prefixes). Call once at startup. */
void log_detect_journal(void);

/* Parses "error", "warn", "info", "debug". Returns false on anything else. */
bool log_level_parse(const char *s, enum log_level *out);

/* Parses "text", "json". Returns false on anything else. */
bool log_format_parse(const char *s, enum log_format *out);

/* A structured field: value is borrowed for the call; len -1 means NUL-terminated. */
struct log_field {
    const char *key;
    const char *value;
    int len;
};

void log_write(enum log_level level, const char *fmt, ...) PRINTF_FMT(2, 3);

/* Like log_write, plus fields: appended as key=value in text (quoted when the
 * value has spaces or quotes), as JSON members in json. Fields with a NULL
 * value are left out. */
void log_write_fields(enum log_level level, const struct log_field *fields, size_t nfields,
                      const char *fmt, ...) PRINTF_FMT(4, 5);

/* Builds the fields in place: log_fields(LOG_LEVEL_INFO, "listening",
 * LOG_STR("addr", addr), LOG_INT("pool_size", n)). msg is a plain string. */
#define log_fields(level, msg, ...)                                                                \
    log_write_fields((level), (struct log_field[]){__VA_ARGS__},                                   \
                     sizeof((struct log_field[]){__VA_ARGS__}) / sizeof(struct log_field), "%s",   \
                     (msg))
#define LOG_STR(key, s)                                                                            \
    {                                                                                              \
        (key), (s), -1                                                                             \
    }
/* The number's text lives in a compound literal until the end of the caller's block. */
#define LOG_INT(key, v)                                                                            \
    {                                                                                              \
        (key), log_fmt_int((char[LOG_INT_MAX]){0}, (long long)(v)), -1                             \
    }
#define LOG_INT_MAX 24

/* Writes v in decimal into buf (LOG_INT_MAX bytes); returns buf. */
const char *log_fmt_int(char *buf, long long v);

/* For a line about an event or a transaction: adds lsn (X/Y, left out when 0)
 * and event_id (left out when NULL; id_len -1 means NUL-terminated). */
void log_event(enum log_level level, uint64_t lsn, const char *event_id, int id_len,
               const char *fmt, ...) PRINTF_FMT(5, 6);

/*
 * Copies a libpq connection string into out (always NUL-terminated, cut at
 * outlen) with every password replaced by "***": the password of a
 * postgres[ql]:// URI's user info, password= and sslpassword= query
 * parameters, and password / sslpassword keywords of a key=value conninfo
 * (quoted or not). Pure; returns out.
 */
char *log_redact_dsn(const char *dsn, char *out, size_t outlen);

/*
 * Secrets scrubbed from every line: each occurrence of a registered string
 * in the formatted message or a field value is written as "***". For text
 * this process did not compose (libpq and librdkafka error messages, which
 * may quote the connection string). Strings shorter than LOG_SECRET_MIN are
 * ignored (scrubbing them would garble every line); at most LOG_SECRETS_MAX
 * are kept. Call at startup, before other threads start; copies s.
 */
#define LOG_SECRET_MIN  4
#define LOG_SECRETS_MAX 16
void log_add_secret(const char *s, size_t len);

/* Registers the passwords of a libpq connection string (the forms
 * log_redact_dsn knows), both as written and percent-decoded. */
void log_add_dsn_secrets(const char *dsn);

/*
 * A library's own message, formatted by the library's format (libmicrohttpd's
 * error logger in both binaries): logged at warn level as "who: message" on
 * one line, its trailing newline dropped and anything but printable ASCII
 * written as '?'.
 */
void log_library_message(const char *who, const char *fmt, va_list ap) PRINTF_FMT(2, 0);

#define log_error(...) log_write(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warn(...)  log_write(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_info(...)  log_write(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...)                                                                             \
    do {                                                                                           \
        if (log_threshold >= LOG_LEVEL_DEBUG)                                                      \
            log_write(LOG_LEVEL_DEBUG, __VA_ARGS__);                                               \
    } while (0)

#endif
