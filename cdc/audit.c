/*
 * cdc-relay audit: the rows of [since, until) from the outbox table, every
 * message of their topics from since (minus the clock skew) to the topics'
 * end, sorted by id and merged. A message no row of the range explains is
 * looked up in the whole table before it is called unexpected, since an
 * event's commit time and its row's time differ at the range's edges.
 * Logs progress and errors; the report goes to cfg->out.
 */
#include "audit.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "duration.h"
#include "kafka_scan.h"
#include "log.h"
#include "outbox_pg.h"
#include "xmem.h"

#define PG_EPOCH_OFFSET_US INT64_C(946684800000000)
/* Ids looked up in the table per query. */
#define LOOKUP_BATCH 1000

/* ---- times ---------------------------------------------------------------- */

/* n decimal digits at s into *out. */
static bool num(const char *s, int n, int *out)
{
    int v = 0;

    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

bool audit_parse_time(const char *text, int64_t now_us, int64_t *out_us)
{
    struct tm tm, back;
    int y, mo, d, h = 0, mi = 0, sec = 0, zh = 0, zm = 0;
    int64_t frac_us = 0, ms;
    const char *p = text;
    time_t t;
    int sign = 0;

    if (strcmp(text, "now") == 0) {
        *out_us = now_us;
        return true;
    }
    if (duration_parse_ms(text, DURATION_BARE_S, &ms)) {
        *out_us = now_us - ms * 1000;
        return true;
    }
    if (strlen(p) < 10 || !num(p, 4, &y) || p[4] != '-' || !num(p + 5, 2, &mo) || p[7] != '-' ||
        !num(p + 8, 2, &d))
        return false;
    p += 10;
    if (*p == 'T' || *p == ' ') {
        if (!num(p + 1, 2, &h) || p[3] != ':' || !num(p + 4, 2, &mi))
            return false;
        p += 6;
        if (*p == ':') {
            if (!num(p + 1, 2, &sec))
                return false;
            p += 3;
            if (*p == '.') {
                int digits = 0;

                for (p++; *p >= '0' && *p <= '9'; p++, digits++) {
                    if (digits == 6)
                        return false;
                    frac_us = frac_us * 10 + (*p - '0');
                }
                if (digits == 0)
                    return false;
                for (; digits < 6; digits++)
                    frac_us *= 10;
            }
        }
        if (*p == 'Z') {
            p++;
        } else if (*p == '+' || *p == '-') {
            sign = *p == '+' ? 1 : -1;
            if (!num(p + 1, 2, &zh) || p[3] != ':' || !num(p + 4, 2, &zm) || zh > 23 || zm > 59)
                return false;
            p += 6;
        }
    }
    if (*p != '\0' || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 59)
        return false;
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    t = timegm(&tm);
    /* timegm normalizes (Feb 30 is Mar 2): a date it had to move is wrong */
    if (t == (time_t)-1 || gmtime_r(&t, &back) == NULL || back.tm_mday != d ||
        back.tm_mon != mo - 1)
        return false;
    *out_us = (int64_t)t * 1000000 + frac_us - (int64_t)sign * (zh * 3600 + zm * 60) * 1000000;
    return true;
}

bool audit_parse_commit_ts(const char *s, size_t len, int64_t *out_us)
{
    char buf[OUTBOX_TS_LEN + 1];

    /* exactly what outbox_format_timestamp writes */
    if (len != OUTBOX_TS_LEN || s[len - 1] != 'Z' || s[10] != 'T' || s[19] != '.')
        return false;
    memcpy(buf, s, len);
    buf[len] = '\0';
    return audit_parse_time(buf, 0, out_us);
}

/* ---- the book ------------------------------------------------------------- */

struct entry {
    const char *id; /* into the arena, set once it stops growing (compare) */
    size_t id_off;
    uint32_t id_len;
    uint32_t topic;
    int64_t commit_us;
    int64_t offset;
    int32_t partition;
    bool has_id;
    bool dead_letter;
};

struct entries {
    struct entry *v;
    size_t n, cap;
};

struct audit_book {
    char *arena; /* ids, back to back */
    size_t len, cap;
    struct entries rows, msgs;
    char **topics;
    size_t ntopics, captopics;
};

struct audit_book *audit_book_new(void)
{
    return xcalloc(1, sizeof(struct audit_book));
}

void audit_book_free(struct audit_book *b)
{
    if (b == NULL)
        return;
    for (size_t i = 0; i < b->ntopics; i++)
        free(b->topics[i]);
    free(b->topics);
    free(b->rows.v);
    free(b->msgs.v);
    free(b->arena);
    free(b);
}

size_t audit_book_topic(struct audit_book *b, const char *name, size_t len)
{
    for (size_t i = 0; i < b->ntopics; i++)
        if (strlen(b->topics[i]) == len && memcmp(b->topics[i], name, len) == 0)
            return i;
    if (b->ntopics == b->captopics) {
        b->captopics = b->captopics ? 2 * b->captopics : 8;
        b->topics = xrealloc(b->topics, b->captopics * sizeof(*b->topics));
    }
    b->topics[b->ntopics] = xstrndup(name, len);
    return b->ntopics++;
}

const char *audit_book_topic_name(const struct audit_book *b, size_t topic)
{
    return topic < b->ntopics ? b->topics[topic] : "";
}

size_t audit_book_ntopics(const struct audit_book *b)
{
    return b->ntopics;
}

static size_t keep_id(struct audit_book *b, const char *id, size_t len)
{
    size_t off = b->len;

    if (b->len + len > b->cap) {
        while (b->len + len > b->cap)
            b->cap = b->cap ? 2 * b->cap : 1 << 16;
        b->arena = xrealloc(b->arena, b->cap);
    }
    if (len > 0)
        memcpy(b->arena + b->len, id, len);
    b->len += len;
    return off;
}

static struct entry *push(struct entries *e)
{
    if (e->n == e->cap) {
        e->cap = e->cap ? 2 * e->cap : 1024;
        e->v = xrealloc(e->v, e->cap * sizeof(*e->v));
    }
    memset(&e->v[e->n], 0, sizeof(e->v[0]));
    return &e->v[e->n++];
}

void audit_book_add_row(struct audit_book *b, const char *id, size_t len, size_t topic)
{
    struct entry *e = push(&b->rows);

    e->id_off = keep_id(b, id, len);
    e->id_len = (uint32_t)len;
    e->topic = (uint32_t)topic;
    e->has_id = true;
    e->partition = -1;
    e->offset = -1;
}

void audit_book_add_msg(struct audit_book *b, const char *id, size_t len, size_t topic,
                        int64_t commit_us, int32_t partition, int64_t offset, bool dead_letter)
{
    struct entry *e = push(&b->msgs);

    e->has_id = id != NULL;
    e->id_off = id != NULL ? keep_id(b, id, len) : 0;
    e->id_len = id != NULL ? (uint32_t)len : 0;
    e->topic = (uint32_t)topic;
    e->commit_us = commit_us;
    e->partition = partition;
    e->offset = offset;
    e->dead_letter = dead_letter;
}

static int cmp_ids(const struct entry *x, const struct entry *y)
{
    size_t n = x->id_len < y->id_len ? x->id_len : y->id_len;
    int c = n > 0 ? memcmp(x->id, y->id, n) : 0;

    if (c != 0)
        return c;
    return x->id_len < y->id_len ? -1 : x->id_len > y->id_len;
}

/* Sort order: id, then topic; messages without an id first. */
static int cmp_entries(const void *a, const void *bb)
{
    const struct entry *x = a, *y = bb;
    int c;

    if (x->has_id != y->has_id)
        return x->has_id ? 1 : -1;
    c = cmp_ids(x, y);
    if (c != 0)
        return c;
    return x->topic < y->topic ? -1 : x->topic > y->topic;
}

static void sort(struct audit_book *b, struct entries *e)
{
    for (size_t i = 0; i < e->n; i++)
        e->v[i].id = b->arena + e->v[i].id_off;
    qsort(e->v, e->n, sizeof(e->v[0]), cmp_entries);
}

static void report(const struct audit_book *b, audit_finding_fn fn, void *arg, enum audit_finding f,
                   const struct entry *e, bool any_topic)
{
    const char *topic = any_topic && f <= AUDIT_DEAD_LETTERED && e->partition < 0
                            ? NULL
                            : audit_book_topic_name(b, e->topic);

    fn(arg, f, e->id, e->id_len, topic, e->partition, e->offset);
}

/* One id: rows [r0, r1) and messages [m0, m1), both non-empty or one so. */
static void compare_group(const struct audit_book *b, const struct entry *r0,
                          const struct entry *r1, const struct entry *m0, const struct entry *m1,
                          int64_t since_us, int64_t until_us, bool any_topic, audit_finding_fn fn,
                          void *arg, struct audit_counts *c)
{
    for (const struct entry *r = r0; r < r1; r++) {
        uint64_t copies = 0;
        bool dl = false;

        for (const struct entry *m = m0; m < m1; m++) {
            /* a dead-letter copy counts by id: its original topic may be
             * none (a NULL route) or a name the row's route did not make */
            if (!any_topic && !m->dead_letter && m->topic != r->topic)
                continue;
            if (m->dead_letter)
                dl = true;
            else
                copies++;
        }
        if (copies > 0) {
            c->found++;
            c->duplicates += copies - 1;
        } else if (dl) {
            c->dead_lettered++;
            report(b, fn, arg, AUDIT_DEAD_LETTERED, r, any_topic);
        } else {
            c->missing++;
            report(b, fn, arg, AUDIT_MISSING, r, any_topic);
        }
    }
    for (const struct entry *m = m0; m < m1; m++) {
        bool topic_ok = any_topic;

        if (m->dead_letter)
            continue; /* the dead-letter topic holds other ranges' events too */
        for (const struct entry *r = r0; r < r1 && !topic_ok; r++)
            topic_ok = r->topic == m->topic;
        if (r0 == r1) {
            if (m->commit_us == INT64_MIN ||
                (m->commit_us >= since_us && m->commit_us < until_us)) {
                c->no_row++;
                report(b, fn, arg, AUDIT_NO_ROW, m, any_topic);
            } else {
                c->outside++;
            }
        } else if (!topic_ok) {
            c->wrong_topic++;
            report(b, fn, arg, AUDIT_WRONG_TOPIC, m, any_topic);
        }
    }
}

void audit_book_compare(struct audit_book *b, int64_t since_us, int64_t until_us, bool any_topic,
                        audit_finding_fn fn, void *arg, struct audit_counts *c)
{
    const struct entry *r = b->rows.v, *rend = b->rows.v + b->rows.n;
    const struct entry *m = b->msgs.v, *mend = b->msgs.v + b->msgs.n;

    memset(c, 0, sizeof(*c));
    c->rows = b->rows.n;
    sort(b, &b->rows);
    sort(b, &b->msgs);
    for (const struct entry *x = m; x < mend; x++)
        c->messages += !x->dead_letter;
    for (; m < mend && !m->has_id; m++) {
        if (m->commit_us != INT64_MIN && (m->commit_us < since_us || m->commit_us >= until_us)) {
            c->outside++;
            continue;
        }
        c->no_id++;
        fn(arg, AUDIT_NO_ID, "", 0, audit_book_topic_name(b, m->topic), m->partition, m->offset);
    }
    while (r < rend || m < mend) {
        const struct entry *r1 = r, *m1 = m;
        int order;

        if (r == rend)
            order = 1;
        else if (m == mend)
            order = -1;
        else
            order = cmp_ids(r, m);
        if (order <= 0)
            while (r1 < rend && cmp_ids(r1, r) == 0)
                r1++;
        if (order >= 0)
            while (m1 < mend && cmp_ids(m1, m) == 0)
                m1++;
        compare_group(b, r, r1, m, m1, since_us, until_us, any_topic, fn, arg, c);
        r = r1;
        m = m1;
    }
}

/* ---- the command ------------------------------------------------------------ */

struct run {
    const struct audit_config *cfg;
    struct audit_book *book;
    size_t invalid_topic; /* the book topic of rows that make no topic name */
    uint64_t null_ids;
    /* kafka_scan's topic index -> the book's; SIZE_MAX: the dead-letter topic */
    size_t *scan_topic;
    /* AUDIT_NO_ROW messages, looked up in the table before they are reported */
    struct {
        char *id;
        int len;
        const char *topic;
        int32_t partition;
        int64_t offset;
    } * cand;
    size_t ncand, capcand;
    struct audit_counts counts;
};

static bool on_row(void *arg, const char *id, const char *route, const char *type)
{
    struct run *run = arg;
    const struct audit_config *cfg = run->cfg;
    size_t t;

    if (id == NULL) {
        run->null_ids++;
        return true;
    }
    if (cfg->topics != NULL) {
        t = 0; /* any topic read */
    } else {
        struct outbox_event ev;
        char topic[256];

        memset(&ev, 0, sizeof(ev));
        ev.aggregate_type =
            (struct pgout_str){route != NULL ? route : "", route ? strlen(route) : 0};
        ev.event_type = (struct pgout_str){type != NULL ? type : "", type ? strlen(type) : 0};
        t = outbox_topic(cfg->topic_template, &ev, topic, sizeof(topic))
                ? audit_book_topic(run->book, topic, strlen(topic))
                : run->invalid_topic;
    }
    audit_book_add_row(run->book, id, strlen(id), t);
    return true;
}

/* Headers asked of kafka_scan, in this order. */
enum { H_ID, H_COMMIT_TS, H_DL_ID, H_DL_TOPIC, H_COUNT };

static void on_message(void *arg, const struct kafka_scan_msg *m)
{
    struct run *run = arg;
    size_t t = run->scan_topic[m->topic];
    int64_t commit_us = INT64_MIN;

    if (t == SIZE_MAX) {
        /* dead-letter copy: counts for the row it was meant for */
        if (m->header[H_DL_ID] == NULL || m->header[H_DL_TOPIC] == NULL)
            return;
        audit_book_add_msg(
            run->book, m->header[H_DL_ID], m->header_len[H_DL_ID],
            audit_book_topic(run->book, m->header[H_DL_TOPIC], m->header_len[H_DL_TOPIC]),
            INT64_MIN, m->partition, m->offset, true);
        return;
    }
    if (m->header[H_COMMIT_TS] != NULL &&
        !audit_parse_commit_ts(m->header[H_COMMIT_TS], m->header_len[H_COMMIT_TS], &commit_us))
        commit_us = INT64_MIN;
    /* Not the relay's message: its record time says which range it is in. */
    if (m->header[H_ID] == NULL && m->timestamp_ms >= 0)
        commit_us = m->timestamp_ms * 1000;
    audit_book_add_msg(run->book, m->header[H_ID], m->header_len[H_ID], t, commit_us, m->partition,
                       m->offset, false);
}

static void print_id(FILE *out, const char *what, const char *id, size_t len)
{
    fprintf(out, "%s id=%.*s", what, (int)len, id);
}

static void on_finding(void *arg, enum audit_finding f, const char *id, size_t len,
                       const char *topic, int32_t partition, int64_t offset)
{
    struct run *run = arg;
    FILE *out = run->cfg->out;

    switch (f) {
    case AUDIT_MISSING:
    case AUDIT_DEAD_LETTERED:
        print_id(out, f == AUDIT_MISSING ? "missing" : "dead-lettered", id, len);
        if (topic != NULL)
            fprintf(out, " topic=%s", topic[0] != '\0' ? topic : "(no valid topic name)");
        fputc('\n', out);
        return;
    case AUDIT_WRONG_TOPIC:
    case AUDIT_NO_ID:
        print_id(out, "unexpected", id, len);
        fprintf(out, " topic=%s partition=%d offset=%lld reason=%s\n", topic, (int)partition,
                (long long)offset,
                f == AUDIT_NO_ID ? "no-id-header" : "topic-differs-from-its-row");
        return;
    case AUDIT_NO_ROW:
        if (run->ncand == run->capcand) {
            run->capcand = run->capcand ? 2 * run->capcand : 64;
            run->cand = xrealloc(run->cand, run->capcand * sizeof(*run->cand));
        }
        run->cand[run->ncand].id = xstrndup(id, len);
        run->cand[run->ncand].len = (int)len;
        run->cand[run->ncand].topic = topic;
        run->cand[run->ncand].partition = partition;
        run->cand[run->ncand].offset = offset;
        run->ncand++;
        return;
    }
}

/* The candidates whose id the table has (a row outside the range: its
 * event's commit time fell in the range) are not unexpected. */
static int settle_candidates(struct run *run, struct pg_conn *conn, char *err, size_t errlen)
{
    const struct audit_config *cfg = run->cfg;

    for (size_t i = 0, n; i < run->ncand; i += n) {
        const char *ids[LOOKUP_BATCH];
        int lens[LOOKUP_BATCH];
        bool found[LOOKUP_BATCH];

        n = run->ncand - i;
        if (n > LOOKUP_BATCH)
            n = LOOKUP_BATCH;
        for (size_t k = 0; k < n; k++) {
            ids[k] = run->cand[i + k].id;
            lens[k] = run->cand[i + k].len;
        }
        if (outbox_pg_ids_exist(conn, cfg->table_schema, cfg->table_name, cfg->columns, ids, lens,
                                n, found, err, errlen) != OUTBOX_PG_OK)
            return -1;
        for (size_t k = 0; k < n; k++) {
            if (found[k]) {
                run->counts.no_row--;
                run->counts.outside++;
                continue;
            }
            print_id(cfg->out, "unexpected", ids[k], (size_t)lens[k]);
            fprintf(cfg->out, " topic=%s partition=%d offset=%lld reason=no-such-row\n",
                    run->cand[i + k].topic, (int)run->cand[i + k].partition,
                    (long long)run->cand[i + k].offset);
        }
    }
    return 0;
}

static double mono_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The topics to read: --topics, or the rows' own; then the dead-letter
 * topic. Fills names (borrowed from the book or cfg copies) and map. */
static size_t scan_topics(struct run *run, char *list, const char **names, size_t *map, size_t max)
{
    const struct audit_config *cfg = run->cfg;
    size_t n = 0;

    if (list != NULL) {
        for (char *tok = strtok(list, ","); tok != NULL && n < max; tok = strtok(NULL, ",")) {
            while (*tok == ' ')
                tok++;
            if (*tok == '\0')
                continue;
            names[n] = tok;
            map[n++] = audit_book_topic(run->book, tok, strlen(tok));
        }
    } else {
        for (size_t t = 0; t < audit_book_ntopics(run->book) && n < max; t++) {
            if (t == run->invalid_topic)
                continue;
            names[n] = audit_book_topic_name(run->book, t);
            map[n++] = t;
        }
    }
    if (cfg->dead_letter_topic != NULL && n < max) {
        names[n] = cfg->dead_letter_topic;
        map[n++] = SIZE_MAX;
    }
    return n;
}

#define AUDIT_MAX_TOPICS 1024

int audit_run(const struct audit_config *cfg)
{
    struct run run = {.cfg = cfg};
    struct outbox_layout layout;
    struct outbox_pg_table t;
    struct pg_conn *conn;
    struct kafka_scan_stats ks;
    static const char *const headers[H_COUNT] = {"id", "commit_ts", "dl_event_id",
                                                 "dl_original_topic"};
    const char *names[AUDIT_MAX_TOPICS];
    size_t map[AUDIT_MAX_TOPICS], ntopics;
    char err[1024], since[OUTBOX_TS_LEN + 1], until[OUTBOX_TS_LEN + 1], *list = NULL;
    double t0 = mono_s(), t_rows, t_kafka;
    uint64_t nrows;
    bool fatal = false;
    int rc = AUDIT_EXIT_ERROR;

    outbox_format_timestamp(cfg->since_us - PG_EPOCH_OFFSET_US, since, sizeof(since));
    outbox_format_timestamp(cfg->until_us - PG_EPOCH_OFFSET_US, until, sizeof(until));
    conn = outbox_pg_connect(cfg->database_url, "cdc-relay-audit", cfg->connect_timeout_s, &fatal,
                             err, sizeof(err));
    if (conn == NULL) {
        log_error("%s", err);
        return AUDIT_EXIT_ERROR;
    }
    run.book = audit_book_new();
    run.invalid_topic = audit_book_topic(run.book, "", 0);
    if (outbox_pg_inspect(conn, cfg->table_schema, cfg->table_name, cfg->columns, &layout, &t, err,
                          sizeof(err)) != OUTBOX_PG_OK) {
        log_error("%s", err);
        goto out;
    }
    if (!t.exists || !t.can_select) {
        log_error("table %s.%s %s", cfg->table_schema, cfg->table_name,
                  !t.exists ? "does not exist (--table)" : "is not readable by this role (SELECT)");
        goto out;
    }
    if (layout.timestamp < 0 || layout.timestamp_kind == OUTBOX_TS_OTHER) {
        log_error("table %s.%s has no column \"%s\" of type timestamptz, timestamp or bigint "
                  "(Unix milliseconds) to select the range by (--timestamp-column)",
                  cfg->table_schema, cfg->table_name, cfg->columns->timestamp);
        goto out;
    }
    log_info("audit: reading the rows of %s.%s with %s in [%s, %s)", cfg->table_schema,
             cfg->table_name, cfg->columns->timestamp, since, until);
    if (outbox_pg_scan_range(conn, cfg->table_schema, cfg->table_name, &layout, cfg->since_us,
                             cfg->until_us, on_row, &run, &nrows, err,
                             sizeof(err)) != OUTBOX_PG_OK) {
        log_error("%s", err);
        goto out;
    }
    t_rows = mono_s();
    if (run.null_ids > 0)
        log_warn("audit: %llu rows have a NULL id column and cannot be audited",
                 (unsigned long long)run.null_ids);

    if (cfg->topics != NULL)
        list = xstrdup(cfg->topics);
    ntopics = scan_topics(&run, list, names, map, AUDIT_MAX_TOPICS);
    run.scan_topic = map;
    log_info("audit: %llu rows; reading %zu topic%s from %lld ms before the range's start",
             (unsigned long long)nrows, ntopics, ntopics == 1 ? "" : "s",
             (long long)cfg->clock_skew_ms);
    if (kafka_scan(cfg->brokers, cfg->kafka_props, cfg->nkafka_props, names, ntopics,
                   cfg->since_us / 1000 - cfg->clock_skew_ms, headers, H_COUNT, 30000, on_message,
                   &run, &ks, err, sizeof(err)) != 0) {
        log_error("%s", err);
        goto out;
    }
    t_kafka = mono_s();
    if (ks.missing_topics > 0)
        log_warn("audit: %llu topic%s not on the broker: every row of %s is missing",
                 (unsigned long long)ks.missing_topics, ks.missing_topics == 1 ? " is" : "s are",
                 ks.missing_topics == 1 ? "it" : "them");
    audit_book_compare(run.book, cfg->since_us, cfg->until_us, cfg->topics != NULL, on_finding,
                       &run, &run.counts);
    if (settle_candidates(&run, conn, err, sizeof(err)) != 0) {
        log_error("%s", err);
        goto out;
    }
    {
        const struct audit_counts *c = &run.counts;
        uint64_t unexpected = c->no_row + c->no_id + c->wrong_topic;

        fprintf(cfg->out,
                "audit: %s.%s [%s, %s): %llu rows, %llu messages read from %zu topic%s (%llu "
                "partitions); %llu found, %llu missing, %llu dead-lettered, %llu unexpected, "
                "%llu duplicates; %.1f s (rows %.1f s, Kafka %.1f s)\n",
                cfg->table_schema, cfg->table_name, since, until, (unsigned long long)c->rows,
                (unsigned long long)ks.messages, ntopics, ntopics == 1 ? "" : "s",
                (unsigned long long)ks.partitions, (unsigned long long)c->found,
                (unsigned long long)c->missing, (unsigned long long)c->dead_lettered,
                (unsigned long long)unexpected, (unsigned long long)c->duplicates, mono_s() - t0,
                t_rows - t0, t_kafka - t_rows);
        fflush(cfg->out);
        rc = c->missing > 0   ? AUDIT_EXIT_MISSING
             : unexpected > 0 ? AUDIT_EXIT_UNEXPECTED
                              : AUDIT_EXIT_OK;
    }
out:
    for (size_t i = 0; i < run.ncand; i++)
        free(run.cand[i].id);
    free(run.cand);
    free(list);
    audit_book_free(run.book);
    outbox_pg_close(conn);
    return rc;
}
