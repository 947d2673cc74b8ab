/*
 * Formats the whole line into a stack buffer and writes it with one write(2),
 * so lines from librdkafka's and libmicrohttpd's threads never interleave.
 * JSON lines stay valid however long the message: it is cut, never the
 * closing brace. libc only.
 */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "hex.h"
#include "lsn.h"

#define LOG_LINE_MAX 8192
#define LOG_MSG_MAX  4096
/* Kept free for the closing quote, brace and newline of a JSON line. */
#define LOG_TAIL_RESERVE 8

enum log_level log_threshold = LOG_LEVEL_INFO;
enum log_format log_output = LOG_FORMAT_TEXT;
bool log_journal;

/* Written at startup only (log_add_secret), read by every thread after. */
static char *secrets[LOG_SECRETS_MAX];
static size_t secret_lens[LOG_SECRETS_MAX];
static size_t nsecrets;

static const char *const level_names[] = {"error", "warn", "info", "debug"};
/* syslog priorities (LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG) as journald prefixes. */
static const char *const level_prefixes[] = {"<3>", "<4>", "<6>", "<7>"};
static const char *const format_names[] = {"text", "json"};

bool log_level_parse(const char *s, enum log_level *out)
{
    for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (enum log_level)i;
            return true;
        }
    }
    return false;
}

bool log_format_parse(const char *s, enum log_format *out)
{
    for (size_t i = 0; i < sizeof(format_names) / sizeof(format_names[0]); i++) {
        if (strcmp(s, format_names[i]) == 0) {
            *out = (enum log_format)i;
            return true;
        }
    }
    return false;
}

static bool parse_ull(const char **p, char stop, unsigned long long *out)
{
    const char *s = *p;
    unsigned long long v = 0;

    if (*s < '0' || *s > '9')
        return false;
    for (; *s >= '0' && *s <= '9'; s++) {
        unsigned long long digit = (unsigned long long)(*s - '0');

        if (v > (~0ULL - digit) / 10)
            return false;
        v = v * 10 + digit;
    }
    if (*s != stop)
        return false;
    *out = v;
    *p = s;
    return true;
}

bool log_journal_stream_is(const char *journal_stream, unsigned long long dev,
                           unsigned long long ino)
{
    const char *p = journal_stream;
    unsigned long long d, i;

    if (p == NULL || !parse_ull(&p, ':', &d))
        return false;
    p++;
    return parse_ull(&p, '\0', &i) && d == dev && i == ino;
}

void log_detect_journal(void)
{
    struct stat st;

    log_journal = fstat(STDERR_FILENO, &st) == 0 &&
                  log_journal_stream_is(getenv("JOURNAL_STREAM"), (unsigned long long)st.st_dev,
                                        (unsigned long long)st.st_ino);
}

const char *log_fmt_int(char *buf, long long v)
{
    snprintf(buf, LOG_INT_MAX, "%lld", v);
    return buf;
}

/* A line being built; appends stop at cap - LOG_TAIL_RESERVE. */
struct line {
    char buf[LOG_LINE_MAX];
    size_t n;
    bool cut; /* an append did not fit */
};

static size_t line_room(const struct line *l)
{
    /* n may already be inside the reserve (a cut message's closing quote) */
    if (l->n >= sizeof(l->buf) - LOG_TAIL_RESERVE)
        return 0;
    return sizeof(l->buf) - LOG_TAIL_RESERVE - l->n;
}

static void line_put(struct line *l, const char *s, size_t len)
{
    if (len > line_room(l)) {
        len = line_room(l);
        l->cut = true;
    }
    memcpy(l->buf + l->n, s, len);
    l->n += len;
}

static void line_puts(struct line *l, const char *s)
{
    line_put(l, s, strlen(s));
}

/* Length of the valid UTF-8 sequence at p (at most len bytes), 0 if invalid. */
static size_t utf8_seq_len(const unsigned char *p, size_t len)
{
    unsigned char c = p[0];
    size_t need;
    unsigned char lo = 0x80, hi = 0xBF;

    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        need = 2;
    else if (c >= 0xE0 && c <= 0xEF)
        need = 3;
    else if (c >= 0xF0 && c <= 0xF4)
        need = 4;
    else
        return 0;
    /* RFC 3629 table: no overlongs, no surrogates, nothing past U+10FFFF. */
    if (c == 0xE0)
        lo = 0xA0;
    else if (c == 0xED)
        hi = 0x9F;
    else if (c == 0xF0)
        lo = 0x90;
    else if (c == 0xF4)
        hi = 0x8F;
    if (len < need || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < need; i++)
        if (p[i] < 0x80 || p[i] > 0xBF)
            return 0;
    return need;
}

/* Appends s as the inside of a JSON string: quotes, backslashes and control
 * characters escaped, invalid UTF-8 replaced by U+FFFD. Never cuts an escape
 * or a character in half. */
static void line_put_escaped(struct line *l, const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;

    while (i < len) {
        char esc[8];
        const char *out = esc;
        size_t outlen;
        size_t adv = 1;
        unsigned char c = p[i];

        if (c == '"' || c == '\\') {
            out = c == '"' ? "\\\"" : "\\\\";
            outlen = 2;
        } else if (c == '\n') {
            out = "\\n";
            outlen = 2;
        } else if (c == '\t') {
            out = "\\t";
            outlen = 2;
        } else if (c == '\r') {
            out = "\\r";
            outlen = 2;
        } else if (c < 0x20 || c == 0x7F) {
            snprintf(esc, sizeof(esc), "\\u%04x", c);
            outlen = 6;
        } else if (c < 0x80) {
            out = (const char *)p + i;
            outlen = 1;
        } else if ((adv = utf8_seq_len(p + i, len - i)) > 0) {
            out = (const char *)p + i;
            outlen = adv;
        } else {
            out = "\\ufffd";
            outlen = 6;
            adv = 1;
        }
        if (outlen > line_room(l)) {
            l->cut = true;
            return;
        }
        line_put(l, out, outlen);
        i += adv;
    }
}

/* Whether a text-format field value can be printed bare. */
static bool bare_value(const char *s, size_t len)
{
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= ' ' || c == '"' || c == '\\' || c == '=' || c == 0x7F)
            return false;
    }
    return true;
}

static void line_put_field_text(struct line *l, const struct log_field *f, size_t len)
{
    if (log_output == LOG_FORMAT_JSON) {
        line_puts(l, ",\"");
        line_put_escaped(l, f->key, strlen(f->key));
        line_puts(l, "\":\"");
        line_put_escaped(l, f->value, len);
        line_puts(l, "\"");
        return;
    }
    line_puts(l, " ");
    line_puts(l, f->key);
    line_puts(l, "=");
    if (bare_value(f->value, len)) {
        line_put(l, f->value, len);
    } else {
        line_puts(l, "\"");
        line_put_escaped(l, f->value, len);
        line_puts(l, "\"");
    }
}

/* Appends a whole field or, when it does not fit, nothing. */
static void line_put_field(struct line *l, const struct log_field *f)
{
    size_t len = f->len < 0 ? strlen(f->value) : (size_t)f->len;
    size_t start = l->n;

    l->cut = false;
    line_put_field_text(l, f, len);
    if (l->cut)
        l->n = start;
}

void log_add_secret(const char *s, size_t len)
{
    char *copy;

    if (len < LOG_SECRET_MIN || nsecrets == LOG_SECRETS_MAX)
        return;
    for (size_t i = 0; i < nsecrets; i++)
        if (secret_lens[i] == len && memcmp(secrets[i], s, len) == 0)
            return;
    copy = malloc(len);
    if (copy == NULL)
        return;
    memcpy(copy, s, len);
    secrets[nsecrets] = copy;
    secret_lens[nsecrets] = len;
    nsecrets++;
}

/* The registered secret that starts at s (at most len bytes), or -1. */
static int secret_at(const char *s, size_t len)
{
    for (size_t i = 0; i < nsecrets; i++)
        if (secret_lens[i] <= len && memcmp(s, secrets[i], secret_lens[i]) == 0)
            return (int)i;
    return -1;
}

/* Copies src into dst (cap bytes, NUL-terminated) with every secret
 * replaced by "***"; returns the length written. */
static size_t scrub(const char *src, size_t len, char *dst, size_t cap)
{
    size_t n = 0;

    for (size_t i = 0; i < len && n + 1 < cap;) {
        int k = secret_at(src + i, len - i);

        if (k >= 0) {
            for (const char *r = "***"; *r != '\0' && n + 1 < cap; r++)
                dst[n++] = *r;
            i += secret_lens[k];
        } else {
            dst[n++] = src[i++];
        }
    }
    dst[n] = '\0';
    return n;
}

static void log_vwrite(enum log_level level, const struct log_field *fields, size_t nfields,
                       const char *fmt, va_list ap)
{
    struct line l;
    char ts_buf[40], msg[LOG_MSG_MAX];
    struct timespec ts;
    struct tm tm;
    size_t n;
    int w;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    n = strftime(ts_buf, sizeof(ts_buf), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts_buf + n, sizeof(ts_buf) - n, ".%03ldZ", ts.tv_nsec / 1000000);
    w = vsnprintf(msg, sizeof(msg), fmt, ap);
    if (w < 0)
        w = 0;
    n = (size_t)w < sizeof(msg) ? (size_t)w : sizeof(msg) - 1;
    if (nsecrets > 0) {
        char clean[LOG_MSG_MAX];

        n = scrub(msg, n, clean, sizeof(clean));
        memcpy(msg, clean, n + 1);
    }
    l.n = 0;
    l.cut = false;
    if (log_journal)
        line_puts(&l, level_prefixes[level]);
    if (log_output == LOG_FORMAT_JSON) {
        line_puts(&l, "{\"ts\":\"");
        line_puts(&l, ts_buf);
        line_puts(&l, "\",\"level\":\"");
        line_puts(&l, level_names[level]);
        line_puts(&l, "\",\"msg\":\"");
        line_put_escaped(&l, msg, n);
        l.buf[l.n++] = '"'; /* from the reserve: a cut message still closes */
    } else {
        line_puts(&l, ts_buf);
        line_puts(&l, " ");
        line_puts(&l, level_names[level]);
        line_puts(&l, " ");
        line_put(&l, msg, n);
    }
    for (size_t i = 0; i < nfields; i++) {
        if (fields[i].value == NULL)
            continue;
        if (nsecrets > 0) {
            char clean[LOG_MSG_MAX];
            struct log_field f = fields[i];
            size_t len = f.len < 0 ? strlen(f.value) : (size_t)f.len;

            f.len = (int)scrub(f.value, len, clean, sizeof(clean));
            f.value = clean;
            line_put_field(&l, &f);
        } else {
            line_put_field(&l, &fields[i]);
        }
    }
    /* The reserve guarantees room for these (at most 3 bytes from it in all). */
    if (log_output == LOG_FORMAT_JSON)
        l.buf[l.n++] = '}';
    l.buf[l.n++] = '\n';
    /* A short write to stderr has nowhere better to be reported. */
    if (write(STDERR_FILENO, l.buf, l.n) < 0)
        return;
}

void log_write(enum log_level level, const char *fmt, ...)
{
    va_list ap;

    if (level > log_threshold)
        return;
    va_start(ap, fmt);
    log_vwrite(level, NULL, 0, fmt, ap);
    va_end(ap);
}

void log_write_fields(enum log_level level, const struct log_field *fields, size_t nfields,
                      const char *fmt, ...)
{
    va_list ap;

    if (level > log_threshold)
        return;
    va_start(ap, fmt);
    log_vwrite(level, fields, nfields, fmt, ap);
    va_end(ap);
}

void log_event(enum log_level level, uint64_t lsn, const char *event_id, int id_len,
               const char *fmt, ...)
{
    char lsn_buf[LSN_STR_MAX];
    struct log_field fields[2] = {
        {"lsn", lsn != 0 ? lsn_format(lsn, lsn_buf, sizeof(lsn_buf)) : NULL, -1},
        {"event_id", event_id, id_len},
    };
    va_list ap;

    if (level > log_threshold)
        return;
    va_start(ap, fmt);
    log_vwrite(level, fields, 2, fmt, ap);
    va_end(ap);
}

/* --- DSN redaction ------------------------------------------------------ */

struct out {
    char *p;
    size_t cap, n;
};

static void out_put(struct out *o, const char *s, size_t len)
{
    for (size_t i = 0; i < len && o->n + 1 < o->cap; i++)
        o->p[o->n++] = s[i];
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static bool secret_key(const char *k, size_t len)
{
    return (len == 8 && strncmp(k, "password", 8) == 0) ||
           (len == 11 && strncmp(k, "sslpassword", 11) == 0);
}

/* URI query string (after '?'): password=... and sslpassword=... values. */
static void redact_query(struct out *o, const char *q)
{
    while (*q != '\0') {
        size_t plen = strcspn(q, "&#");
        const char *eq = memchr(q, '=', plen);

        if (eq != NULL && secret_key(q, (size_t)(eq - q))) {
            out_put(o, q, (size_t)(eq - q) + 1);
            out_put(o, "***", 3);
        } else {
            out_put(o, q, plen);
        }
        q += plen;
        if (*q == '#') {
            out_put(o, q, strlen(q));
            return;
        }
        if (*q == '&')
            out_put(o, q++, 1);
    }
}

static void redact_uri(struct out *o, const char *dsn, size_t scheme_len)
{
    const char *auth = dsn + scheme_len;
    /* libpq ends the user info at the first '@' before any '/' (and so
     * does not allow a raw '/' in a URI password either). */
    size_t span = strcspn(auth, "@/");
    const char *rest = auth;

    out_put(o, dsn, scheme_len);
    if (auth[span] == '@') {
        const char *colon = memchr(auth, ':', span);

        if (colon != NULL) {
            out_put(o, auth, (size_t)(colon - auth) + 1);
            out_put(o, "***", 3);
        } else {
            out_put(o, auth, span);
        }
        out_put(o, "@", 1);
        rest = auth + span + 1;
    }
    span = strcspn(rest, "?");
    out_put(o, rest, span);
    if (rest[span] == '?') {
        out_put(o, "?", 1);
        redact_query(o, rest + span + 1);
    }
}

/* key = value pairs; values single-quoted with backslash escapes, or bare. */
static void redact_keywords(struct out *o, const char *s)
{
    while (*s != '\0') {
        const char *key, *p;
        size_t klen;
        bool secret;

        while (is_space(*s))
            out_put(o, s++, 1);
        key = s;
        while (*s != '\0' && *s != '=' && !is_space(*s))
            s++;
        klen = (size_t)(s - key);
        secret = secret_key(key, klen);
        out_put(o, key, klen);
        p = s;
        while (is_space(*p))
            p++;
        if (*p != '=') {
            continue; /* malformed: copied as is, libpq will say so */
        }
        p++;
        while (is_space(*p))
            p++;
        out_put(o, s, (size_t)(p - s));
        s = p;
        if (*s == '\'') {
            s++;
            while (*s != '\0' && *s != '\'') {
                if (*s == '\\' && s[1] != '\0')
                    s++;
                s++;
            }
            if (*s == '\'')
                s++;
            if (secret)
                out_put(o, "'***'", 5);
            else
                out_put(o, p, (size_t)(s - p));
        } else {
            while (*s != '\0' && !is_space(*s))
                s++;
            if (secret)
                out_put(o, "***", 3);
            else
                out_put(o, p, (size_t)(s - p));
        }
    }
}

char *log_redact_dsn(const char *dsn, char *out, size_t outlen)
{
    struct out o = {.p = out, .cap = outlen, .n = 0};

    if (outlen == 0)
        return out;
    if (dsn != NULL) {
        if (strncmp(dsn, "postgresql://", 13) == 0)
            redact_uri(&o, dsn, 13);
        else if (strncmp(dsn, "postgres://", 11) == 0)
            redact_uri(&o, dsn, 11);
        else
            redact_keywords(&o, dsn);
    }
    out[o.n] = '\0';
    return out;
}

/* Registers s as written and, when it has %XX escapes, decoded. */
static void add_uri_secret(const char *s, size_t len)
{
    char dec[512];
    size_t n = 0;

    log_add_secret(s, len);
    for (size_t i = 0; i < len && n < sizeof(dec); i++) {
        if (s[i] == '%' && i + 2 < len && hex_value(s[i + 1]) >= 0 && hex_value(s[i + 2]) >= 0) {
            dec[n++] = (char)(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
            i += 2;
        } else {
            dec[n++] = s[i];
        }
    }
    log_add_secret(dec, n);
}

void log_add_dsn_secrets(const char *dsn)
{
    size_t scheme = 0;

    if (dsn == NULL)
        return;
    if (strncmp(dsn, "postgresql://", 13) == 0)
        scheme = 13;
    else if (strncmp(dsn, "postgres://", 11) == 0)
        scheme = 11;
    if (scheme > 0) {
        const char *auth = dsn + scheme, *q;
        size_t span = strcspn(auth, "@/");
        const char *colon = memchr(auth, ':', span);

        if (auth[span] == '@' && colon != NULL)
            add_uri_secret(colon + 1, (size_t)(auth + span - colon - 1));
        q = strchr(auth, '?');
        while (q != NULL && *q != '\0' && *q != '#') {
            size_t plen;
            const char *eq;

            q++;
            plen = strcspn(q, "&#");
            eq = memchr(q, '=', plen);
            if (eq != NULL && secret_key(q, (size_t)(eq - q)))
                add_uri_secret(eq + 1, (size_t)(q + plen - eq - 1));
            q += plen;
        }
        return;
    }
    /* key = value conninfo: the values of password keywords, unquoted. */
    for (const char *s = dsn; *s != '\0';) {
        const char *key;
        size_t klen;

        while (is_space(*s))
            s++;
        key = s;
        while (*s != '\0' && *s != '=' && !is_space(*s))
            s++;
        klen = (size_t)(s - key);
        while (is_space(*s))
            s++;
        if (*s != '=') {
            if (*s != '\0' && klen == 0)
                s++;
            continue;
        }
        s++;
        while (is_space(*s))
            s++;
        if (*s == '\'') {
            const char *raw = ++s;
            char val[512];
            size_t n = 0;

            while (*s != '\0' && *s != '\'') {
                if (*s == '\\' && s[1] != '\0')
                    s++;
                if (n < sizeof(val))
                    val[n++] = *s;
                s++;
            }
            if (secret_key(key, klen)) {
                log_add_secret(val, n);
                log_add_secret(raw, (size_t)(s - raw));
            }
            if (*s == '\'')
                s++;
        } else {
            const char *v = s;
            while (*s != '\0' && !is_space(*s))
                s++;
            if (secret_key(key, klen))
                log_add_secret(v, (size_t)(s - v));
        }
    }
}

void log_library_message(const char *who, const char *fmt, va_list ap)
{
    char msg[512];
    size_t n;

    vsnprintf(msg, sizeof(msg), fmt, ap);
    n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
        msg[--n] = '\0';
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)msg[i] < 0x20 || (unsigned char)msg[i] > 0x7e || msg[i] == '"')
            msg[i] = '?';
    log_warn("%s: %s", who, msg);
}
