/* Prometheus rendering, parsed back with a small exposition-format parser;
 * the readiness rule; the snapshot board; librdkafka statistics parsing. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "cdc/metrics.h"
#include "cdc/sink_kafka.h"
#include "unit/check.h"

/* --- a text exposition format (0.0.4) parser, strict enough to reject ---- */

#define MAX_SAMPLES  256
#define MAX_FAMILIES 32
#define MAX_LABELS   6

struct sample {
    char name[128];
    int nlabels;
    char label_key[MAX_LABELS][64];
    char label_val[MAX_LABELS][256];
    double value;
};

struct family {
    char name[128];
    char type[16];
    bool has_help;
};

struct exposition {
    struct sample samples[MAX_SAMPLES];
    int nsamples;
    struct family families[MAX_FAMILIES];
    int nfamilies;
    char error[256];
};

static bool name_ok(const char *s)
{
    if (!(isalpha((unsigned char)*s) || *s == '_' || *s == ':'))
        return false;
    for (s++; *s; s++)
        if (!(isalnum((unsigned char)*s) || *s == '_' || *s == ':'))
            return false;
    return true;
}

static struct family *family_find(struct exposition *e, const char *name)
{
    for (int i = 0; i < e->nfamilies; i++)
        if (strcmp(e->families[i].name, name) == 0)
            return &e->families[i];
    return NULL;
}

/* The family a sample belongs to: its own name, or for a histogram's
 * _bucket, _sum and _count series the name without the suffix. */
static struct family *family_of(struct exposition *e, const char *sample)
{
    static const char *const suffixes[] = {"_bucket", "_sum", "_count"};
    struct family *f = family_find(e, sample);
    size_t n = strlen(sample);

    for (size_t i = 0; f == NULL && i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
        size_t k = strlen(suffixes[i]);
        char base[128];

        if (n <= k || n - k >= sizeof(base) || strcmp(sample + n - k, suffixes[i]) != 0)
            continue;
        memcpy(base, sample, n - k);
        base[n - k] = '\0';
        f = family_find(e, base);
        if (f != NULL && strcmp(f->type, "histogram") != 0)
            f = NULL;
    }
    return f;
}

/* Reads a metric or label name at *p into out; advances *p. */
static bool read_name(const char **p, char *out, size_t outlen)
{
    size_t n = 0;

    while (**p && (isalnum((unsigned char)**p) || **p == '_' || **p == ':')) {
        if (n + 1 >= outlen)
            return false;
        out[n++] = *(*p)++;
    }
    out[n] = '\0';
    return n > 0 && name_ok(out);
}

static bool parse_labels(const char **p, struct sample *s)
{
    (*p)++; /* '{' */
    while (**p != '}') {
        size_t n = 0;
        char *val;

        if (s->nlabels == MAX_LABELS)
            return false;
        if (!read_name(p, s->label_key[s->nlabels], sizeof(s->label_key[0])))
            return false;
        if (*(*p)++ != '=' || *(*p)++ != '"')
            return false;
        val = s->label_val[s->nlabels];
        while (**p != '"') {
            char c = *(*p)++;

            if (c == '\0' || c == '\n')
                return false;
            if (c == '\\') {
                c = *(*p)++;
                if (c == 'n')
                    c = '\n';
                else if (c != '\\' && c != '"')
                    return false;
            }
            if (n + 1 >= sizeof(s->label_val[0]))
                return false;
            val[n++] = c;
        }
        val[n] = '\0';
        (*p)++; /* closing quote */
        s->nlabels++;
        if (**p == ',')
            (*p)++;
        else if (**p != '}')
            return false;
    }
    (*p)++;
    return true;
}

/* Returns false with e->error set on the first malformed line. */
static bool exposition_parse(const char *text, struct exposition *e)
{
    const char *line = text;

    memset(e, 0, sizeof(*e));
    while (*line) {
        const char *eol = strchr(line, '\n');
        char buf[1024];
        size_t len;

        if (eol == NULL) {
            snprintf(e->error, sizeof(e->error), "last line has no newline");
            return false;
        }
        len = (size_t)(eol - line);
        if (len >= sizeof(buf)) {
            snprintf(e->error, sizeof(e->error), "line too long");
            return false;
        }
        memcpy(buf, line, len);
        buf[len] = '\0';
        line = eol + 1;
        if (strncmp(buf, "# HELP ", 7) == 0 || strncmp(buf, "# TYPE ", 7) == 0) {
            char name[128], rest[512];
            struct family *f;

            if (sscanf(buf + 7, "%127s %511[^\n]", name, rest) != 2 || !name_ok(name)) {
                snprintf(e->error, sizeof(e->error), "bad comment: %.200s", buf);
                return false;
            }
            f = family_find(e, name);
            if (f == NULL) {
                if (e->nfamilies == MAX_FAMILIES)
                    return false;
                f = &e->families[e->nfamilies++];
                snprintf(f->name, sizeof(f->name), "%s", name);
            }
            if (buf[2] == 'H') {
                f->has_help = true;
            } else {
                if (f->type[0] != '\0' ||
                    (strcmp(rest, "counter") != 0 && strcmp(rest, "gauge") != 0 &&
                     strcmp(rest, "histogram") != 0 && strcmp(rest, "untyped") != 0)) {
                    snprintf(e->error, sizeof(e->error), "bad or repeated TYPE: %.200s", buf);
                    return false;
                }
                snprintf(f->type, sizeof(f->type), "%.15s", rest);
            }
        } else if (buf[0] == '#' || buf[0] == '\0') {
            continue;
        } else {
            struct sample *s;
            const char *p = buf;
            char *end;

            if (e->nsamples == MAX_SAMPLES)
                return false;
            s = &e->samples[e->nsamples];
            memset(s, 0, sizeof(*s));
            if (!read_name(&p, s->name, sizeof(s->name)) || (*p == '{' && !parse_labels(&p, s)) ||
                *p++ != ' ') {
                snprintf(e->error, sizeof(e->error), "bad sample: %.200s", buf);
                return false;
            }
            s->value = strtod(p, &end);
            if (end == p || (*end != '\0' && *end != ' ')) {
                snprintf(e->error, sizeof(e->error), "bad value: %.200s", buf);
                return false;
            }
            if (family_of(e, s->name) == NULL) {
                snprintf(e->error, sizeof(e->error), "sample before its TYPE: %.200s", buf);
                return false;
            }
            e->nsamples++;
        }
    }
    return true;
}

/* The sample name{key="val"} (key NULL: the one without labels), or NULL. */
static const struct sample *find(const struct exposition *e, const char *name, const char *key,
                                 const char *val)
{
    for (int i = 0; i < e->nsamples; i++) {
        const struct sample *s = &e->samples[i];

        if (strcmp(s->name, name) != 0)
            continue;
        if (key == NULL && s->nlabels == 0)
            return s;
        for (int j = 0; key != NULL && j < s->nlabels; j++)
            if (strcmp(s->label_key[j], key) == 0 && strcmp(s->label_val[j], val) == 0)
                return s;
    }
    return NULL;
}

static bool same_series(const struct sample *a, const struct sample *b)
{
    if (strcmp(a->name, b->name) != 0 || a->nlabels != b->nlabels)
        return false;
    for (int k = 0; k < a->nlabels; k++)
        if (strcmp(a->label_key[k], b->label_key[k]) != 0 ||
            strcmp(a->label_val[k], b->label_val[k]) != 0)
            return false;
    return true;
}

static double value_of(const struct exposition *e, const char *name)
{
    const struct sample *s = find(e, name, NULL, NULL);
    return s ? s->value : -1;
}

static double labelled(const struct exposition *e, const char *name, const char *key,
                       const char *val)
{
    const struct sample *s = find(e, name, key, val);
    return s ? s->value : -1;
}

/* --- tests ------------------------------------------------------------- */

static struct metrics_snapshot sample_snapshot(void)
{
    struct metrics_snapshot s;

    memset(&s, 0, sizeof(s));
    s.events_received = 1200;
    s.events_produced = 1100;
    s.events_delivered = 1000;
    s.events_failed = 2;
    s.events_dead_lettered = 5;
    s.reconnects_postgres = 3;
    s.reconnects_kafka = 1;
    s.events_in_flight = 100;
    s.received_lsn = UINT64_C(0x100002000);
    s.delivered_lsn = UINT64_C(0x100001000);
    s.confirmed_lsn = UINT64_C(0x100000800);
    s.server_wal_end_lsn = UINT64_C(0x100003000);
    s.pending_known = true;
    s.oldest_pending_commit_us = INT64_C(1700000000000000);
    s.streaming = true;
    s.catching_up = false;
    s.last_server_msg_us = 50000000;
    s.server_timeout_ms = 60000;
    s.have_kafka = true;
    s.kafka.known = true;
    s.kafka.nbrokers = 2;
    s.kafka.brokers_up = 1;
    snprintf(s.kafka.brokers[0].name, sizeof(s.kafka.brokers[0].name), "127.0.0.1:9092/1");
    s.kafka.brokers[0].up = true;
    s.kafka.brokers[0].rtt_us = 2500;
    /* a name that needs escaping, and no rtt measured yet */
    snprintf(s.kafka.brokers[1].name, sizeof(s.kafka.brokers[1].name), "we\"ird\\host:1/2");
    s.kafka.brokers[1].up = false;
    s.kafka.brokers[1].rtt_us = -1;
    return s;
}

static void test_render_parses_back(void)
{
    struct metrics_snapshot s = sample_snapshot();
    static struct exposition e;
    static const struct version_libs libs = {"15.13", "2.0.2", "2.14", "0.9.75"};
    const struct prom_process proc = {
        .known = true,
        .cpu_seconds = 12.34,
        .resident_bytes = 33554432,
        .virtual_bytes = 268435456,
        .open_fds = 17,
        .max_fds = 1024,
        .start_time_s = 1700000000.25,
    };
    char *text = metrics_render(&s, &proc, &libs, INT64_C(1700000002500000), 51000000);
    bool ok = exposition_parse(text, &e);

    CHECK(ok);
    if (!ok) {
        fprintf(stderr, "parse error: %s\n%s", e.error, text);
        free(text);
        return;
    }
    CHECK_EQ_INT(value_of(&e, "cdc_relay_events_received_total"), 1200);
    CHECK_EQ_INT(value_of(&e, "cdc_relay_events_produced_total"), 1100);
    CHECK_EQ_INT(value_of(&e, "cdc_relay_events_delivered_total"), 1000);
    CHECK_EQ_INT(value_of(&e, "cdc_relay_events_failed_total"), 2);
    CHECK_EQ_INT(value_of(&e, "cdc_relay_events_dead_lettered_total"), 5);
    CHECK_EQ_INT(value_of(&e, "cdc_relay_events_in_flight"), 100);
    CHECK_EQ_INT(value_of(&e, "cdc_relay_received_lsn_bytes"), 0x100002000);
    CHECK_EQ_INT(value_of(&e, "cdc_relay_delivered_lsn_bytes"), 0x100001000);
    CHECK_EQ_INT(value_of(&e, "cdc_relay_confirmed_lsn_bytes"), 0x100000800);
    CHECK_EQ_INT(value_of(&e, "cdc_relay_server_wal_end_lsn_bytes"), 0x100003000);
    CHECK_EQ_INT(value_of(&e, "cdc_relay_lag_bytes"), 0x2800);
    CHECK(value_of(&e, "cdc_relay_lag_seconds") > 2.499 &&
          value_of(&e, "cdc_relay_lag_seconds") < 2.501);
    CHECK_EQ_INT(labelled(&e, "cdc_relay_reconnects_total", "cause", "postgres"), 3);
    CHECK_EQ_INT(labelled(&e, "cdc_relay_reconnects_total", "cause", "kafka"), 1);
    CHECK_EQ_INT(labelled(&e, "cdc_relay_broker_up", "broker", "127.0.0.1:9092/1"), 1);
    CHECK_EQ_INT(labelled(&e, "cdc_relay_broker_up", "broker", "we\"ird\\host:1/2"), 0);
    CHECK(labelled(&e, "cdc_relay_broker_rtt_seconds", "broker", "127.0.0.1:9092/1") > 0.00249 &&
          labelled(&e, "cdc_relay_broker_rtt_seconds", "broker", "127.0.0.1:9092/1") < 0.00251);
    CHECK(find(&e, "cdc_relay_broker_rtt_seconds", "broker", "we\"ird\\host:1/2") == NULL);
    CHECK_EQ_INT(value_of(&e, "cdc_relay_streaming"), 1);
    CHECK_EQ_INT(value_of(&e, "cdc_relay_catching_up"), 0);
    CHECK_EQ_INT(value_of(&e, "cdc_relay_ready"), 1);
    /* process_* as the client libraries name them, and the build info */
    CHECK(value_of(&e, "process_cpu_seconds_total") > 12.339 &&
          value_of(&e, "process_cpu_seconds_total") < 12.341);
    CHECK_EQ_INT(value_of(&e, "process_resident_memory_bytes"), 33554432);
    CHECK_EQ_INT(value_of(&e, "process_virtual_memory_bytes"), 268435456);
    CHECK_EQ_INT(value_of(&e, "process_open_fds"), 17);
    CHECK_EQ_INT(value_of(&e, "process_max_fds"), 1024);
    CHECK(value_of(&e, "process_start_time_seconds") > 1700000000.24 &&
          value_of(&e, "process_start_time_seconds") < 1700000000.26);
    {
        const struct sample *bi = find(&e, "cdc_relay_build_info", "librdkafka", "2.0.2");

        CHECK(bi != NULL && bi->value == 1 && bi->nlabels == 5);
        CHECK(find(&e, "cdc_relay_build_info", "version", ORDERS_CDC_VERSION) == bi);
        CHECK(find(&e, "cdc_relay_build_info", "libpq", "15.13") == bi);
        CHECK(find(&e, "cdc_relay_build_info", "jansson", "2.14") == bi);
        CHECK(find(&e, "cdc_relay_build_info", "libmicrohttpd", "0.9.75") == bi);
    }

    /* Conventions: every family has HELP and TYPE, counters end in _total
     * and nothing else does, units in the name. */
    for (int i = 0; i < e.nfamilies; i++) {
        const struct family *f = &e.families[i];
        size_t n = strlen(f->name);
        bool total = n > 6 && strcmp(f->name + n - 6, "_total") == 0;

        CHECK(f->has_help);
        CHECK(f->type[0] != '\0');
        CHECK(strncmp(f->name, "cdc_relay_", 10) == 0 || strncmp(f->name, "process_", 8) == 0);
        CHECK(total == (strcmp(f->type, "counter") == 0));
    }
    {
        static const char *const expected[] = {
            "cdc_relay_events_received_total",
            "cdc_relay_events_produced_total",
            "cdc_relay_events_delivered_total",
            "cdc_relay_events_failed_total",
            "cdc_relay_events_dead_lettered_total",
            "cdc_relay_events_in_flight",
            "cdc_relay_received_lsn_bytes",
            "cdc_relay_delivered_lsn_bytes",
            "cdc_relay_confirmed_lsn_bytes",
            "cdc_relay_server_wal_end_lsn_bytes",
            "cdc_relay_lag_bytes",
            "cdc_relay_lag_seconds",
            "cdc_relay_transaction_latency_seconds",
            "cdc_relay_end_to_end_latency_seconds",
            "cdc_relay_reconnects_total",
            "cdc_relay_broker_up",
            "cdc_relay_broker_rtt_seconds",
            "cdc_relay_streaming",
            "cdc_relay_catching_up",
            "cdc_relay_standby_waiting",
            "cdc_relay_ready",
            "process_cpu_seconds_total",
            "process_open_fds",
            "process_max_fds",
            "process_virtual_memory_bytes",
            "process_resident_memory_bytes",
            "process_start_time_seconds",
            "cdc_relay_build_info",
        };
        size_t nexp = sizeof(expected) / sizeof(expected[0]);

        CHECK_EQ_INT(e.nfamilies, nexp);
        for (size_t i = 0; i < nexp; i++)
            CHECK(family_find(&e, expected[i]) != NULL);
    }
    /* no sample appears twice */
    {
        int repeats = 0;

        for (int i = 0; i < e.nsamples; i++)
            for (int j = i + 1; j < e.nsamples; j++)
                repeats += same_series(&e.samples[i], &e.samples[j]);
        CHECK_EQ_INT(repeats, 0);
    }
    free(text);
}

static void test_render_idle_and_clamped(void)
{
    struct metrics_snapshot s;
    static struct exposition e;
    char *text;

    memset(&s, 0, sizeof(s));
    /* confirmed ahead of what the server said (keepalive not seen yet) */
    s.confirmed_lsn = 500;
    s.server_wal_end_lsn = 400;
    text = metrics_render(&s, NULL, NULL, 1000, 1000);
    CHECK(exposition_parse(text, &e));
    CHECK_EQ_INT(value_of(&e, "cdc_relay_lag_bytes"), 0);
    CHECK_EQ_INT(value_of(&e, "cdc_relay_lag_seconds"), 0); /* nothing in flight */
    CHECK_EQ_INT(value_of(&e, "cdc_relay_streaming"), 0);
    CHECK_EQ_INT(value_of(&e, "cdc_relay_ready"), 0);
    CHECK_EQ_INT(value_of(&e, "cdc_relay_standby_waiting"), 0);
    /* no producer: the broker families are present, without samples */
    CHECK(family_find(&e, "cdc_relay_broker_up") != NULL);
    CHECK(find(&e, "cdc_relay_broker_up", "broker", "127.0.0.1:9092/1") == NULL);
    /* without process figures or library versions those families are left out */
    CHECK(family_find(&e, "process_start_time_seconds") == NULL);
    CHECK(family_find(&e, "cdc_relay_build_info") == NULL);
    free(text);
    /* a --standby relay waiting for the slot: not ready, and says why */
    s.standby_waiting = true;
    text = metrics_render(&s, NULL, NULL, 1000, 1000);
    CHECK(exposition_parse(text, &e));
    CHECK_EQ_INT(value_of(&e, "cdc_relay_standby_waiting"), 1);
    CHECK_EQ_INT(value_of(&e, "cdc_relay_ready"), 0);
    free(text);
}

/* The value of a stage's bucket sample with le as rendered, or -1 if absent. */
static double latency_bucket(const struct exposition *e, const char *stage, const char *le)
{
    for (int i = 0; i < e->nsamples; i++) {
        const struct sample *s = &e->samples[i];

        if (strcmp(s->name, "cdc_relay_transaction_latency_seconds_bucket") == 0 &&
            s->nlabels == 2 && strcmp(s->label_val[0], stage) == 0 &&
            strcmp(s->label_val[1], le) == 0)
            return s->value;
    }
    return -1;
}

static void test_render_latency_histograms(void)
{
    struct metrics_snapshot s;
    static struct exposition e;
    /* commit 0, sent +1 ms, read +1.5 ms, produced +1.6 ms, delivered +41.6 ms */
    struct latency_times fast = {1000000, 1001000, 1001500, 1001600};
    char *text;
    int stage_series = 0;

    memset(&s, 0, sizeof(s));
    latency_observe(s.latency, &fast, 1041600);
    latency_observe(s.latency, &fast, 1041600);
    text = metrics_render(&s, NULL, NULL, 1000, 1000);
    CHECK(exposition_parse(text, &e));
    CHECK(family_find(&e, "cdc_relay_transaction_latency_seconds") != NULL);
    /* The total is its own histogram: summing the stage family never counts it twice. */
    CHECK(find(&e, "cdc_relay_transaction_latency_seconds_count", "stage", "total") == NULL);
    CHECK_EQ_INT(value_of(&e, "cdc_relay_end_to_end_latency_seconds_count"), 2);
    CHECK(value_of(&e, "cdc_relay_end_to_end_latency_seconds_sum") > 0.0831 &&
          value_of(&e, "cdc_relay_end_to_end_latency_seconds_sum") < 0.0833);
    CHECK_EQ_INT(labelled(&e, "cdc_relay_end_to_end_latency_seconds_bucket", "le", "0.03"), 0);
    CHECK_EQ_INT(labelled(&e, "cdc_relay_end_to_end_latency_seconds_bucket", "le", "0.05"), 2);
    CHECK_EQ_INT(labelled(&e, "cdc_relay_end_to_end_latency_seconds_bucket", "le", "+Inf"), 2);
    {
        double stages = 0;

        for (int st = 0; st < LATENCY_TOTAL; st++)
            stages += labelled(&e, "cdc_relay_transaction_latency_seconds_sum", "stage",
                               latency_stage_name((enum latency_stage)st));
        CHECK(stages > 0.08319 && stages < 0.08321); /* 4 stages, 2 x 41.6 ms */
    }
    /* le is inclusive: 1 ms lands in the 0.001 bucket; cumulative from there */
    CHECK_EQ_INT(latency_bucket(&e, "wal", "0.0005"), 0);
    CHECK_EQ_INT(latency_bucket(&e, "wal", "0.001"), 2);
    CHECK_EQ_INT(latency_bucket(&e, "receive", "0.0005"), 2);
    CHECK_EQ_INT(latency_bucket(&e, "produce", "0.0001"), 2);
    CHECK_EQ_INT(latency_bucket(&e, "deliver", "0.03"), 0);
    CHECK_EQ_INT(latency_bucket(&e, "deliver", "0.05"), 2);
    /* every stage: buckets never decrease, +Inf equals _count */
    for (int st = 0; st < LATENCY_TOTAL; st++) {
        const char *stage = latency_stage_name((enum latency_stage)st);
        double last = -1, last_le = -1;
        int buckets = 0;

        for (int i = 0; i < e.nsamples; i++) {
            const struct sample *x = &e.samples[i];

            if (strcmp(x->name, "cdc_relay_transaction_latency_seconds_bucket") != 0 ||
                strcmp(x->label_val[0], stage) != 0)
                continue;
            CHECK(x->value >= last);
            last = x->value;
            if (strcmp(x->label_val[1], "+Inf") != 0) {
                CHECK(atof(x->label_val[1]) > last_le);
                last_le = atof(x->label_val[1]);
            }
            buckets++;
        }
        CHECK_EQ_INT(buckets, LATENCY_BUCKETS + 1);
        CHECK_EQ_INT(last,
                     labelled(&e, "cdc_relay_transaction_latency_seconds_count", "stage", stage));
        stage_series++;
    }
    CHECK_EQ_INT(stage_series, 4);
    free(text);
}

static void test_parser_rejects_garbage(void)
{
    static struct exposition e;

    CHECK(!exposition_parse("cdc_x 1\n", &e));                          /* no TYPE */
    CHECK(!exposition_parse("# TYPE a gauge\na{b=\"c} 1\n", &e));       /* open quote */
    CHECK(!exposition_parse("# TYPE a gauge\na one\n", &e));            /* value */
    CHECK(!exposition_parse("# TYPE a gauge\n# TYPE a counter\n", &e)); /* twice */
    CHECK(!exposition_parse("# TYPE a gauge\na 1", &e));                /* newline */
    CHECK(exposition_parse("# HELP a x\n# TYPE a gauge\na{b=\"\\\"\\n\"} 1.5\n", &e));
    CHECK_STR(e.samples[0].label_val[0], "\"\n");
}

static void test_ready(void)
{
    struct metrics_snapshot s = sample_snapshot();
    char why[128];

    CHECK(metrics_ready(&s, 51000000, why, sizeof(why)));
    CHECK_STR(why, "ready");
    /* the server quiet for longer than --server-timeout */
    CHECK(!metrics_ready(&s, 50000000 + 60000000, why, sizeof(why)));
    CHECK(strstr(why, "no message from the server") != NULL);
    s.streaming = false;
    CHECK(!metrics_ready(&s, 51000000, why, sizeof(why)));
    CHECK_STR(why, "replication stream not established");
    s.streaming = true;
    s.kafka.brokers_up = 0;
    CHECK(!metrics_ready(&s, 51000000, why, sizeof(why)));
    CHECK_STR(why, "no kafka broker up");
    /* without statistics, ALL_BROKERS_DOWN decides */
    s.kafka.known = false;
    CHECK(metrics_ready(&s, 51000000, why, sizeof(why)));
    s.kafka.all_brokers_down = true;
    CHECK(!metrics_ready(&s, 51000000, why, sizeof(why)));
    s.have_kafka = false;
    CHECK(!metrics_ready(&s, 51000000, why, sizeof(why)));
    CHECK_STR(why, "no kafka producer");
}

static void test_board(void)
{
    struct metrics_board *b = metrics_board_new();
    struct metrics_snapshot in = sample_snapshot(), out;

    metrics_board_read(b, &out);
    CHECK_EQ_U64(out.events_received, 0);
    metrics_board_publish(b, &in);
    metrics_board_read(b, &out);
    CHECK_EQ_U64(out.events_received, in.events_received);
    CHECK_EQ_U64(out.confirmed_lsn, in.confirmed_lsn);
    CHECK_EQ_INT(out.kafka.nbrokers, 2);
    CHECK_STR(out.kafka.brokers[1].name, in.kafka.brokers[1].name);
    metrics_board_free(b);
    metrics_board_free(NULL);
}

static const char stats_json[] =
    "{\"name\":\"cdc-relay#producer-1\",\"type\":\"producer\",\"brokers\":{"
    "\"127.0.0.1:9092/bootstrap\":{\"name\":\"127.0.0.1:9092/bootstrap\",\"nodeid\":-1,"
    "\"source\":\"configured\",\"state\":\"INIT\",\"rtt\":{\"avg\":0,\"cnt\":0}},"
    "\"localhost:9092/1\":{\"name\":\"localhost:9092/1\",\"nodeid\":1,\"source\":\"learned\","
    "\"state\":\"UP\",\"rtt\":{\"avg\":1800,\"cnt\":12}},"
    "\":0/internal\":{\"name\":\":0/internal\",\"nodeid\":-1,\"source\":\"internal\","
    "\"state\":\"UP\",\"rtt\":{\"avg\":0,\"cnt\":0}},"
    "\"GroupCoordinator\":{\"name\":\"GroupCoordinator\",\"nodeid\":1,\"source\":\"logical\","
    "\"state\":\"UP\"}},\"topics\":{}}";

static const struct sink_broker_stats *broker(const struct sink_stats *st, const char *name)
{
    for (int i = 0; i < st->nbrokers; i++)
        if (strcmp(st->brokers[i].name, name) == 0)
            return &st->brokers[i];
    return NULL;
}

static void test_kafka_stats_parse(void)
{
    struct sink_stats st, next, prev;
    const char *idle = "{\"brokers\":{\"localhost:9092/1\":{\"name\":\"localhost:9092/1\","
                       "\"source\":\"learned\",\"state\":\"UP\",\"rtt\":{\"avg\":0,\"cnt\":0}}}}";
    const char *down = "{\"brokers\":{\"localhost:9092/1\":{\"name\":\"localhost:9092/1\","
                       "\"source\":\"learned\",\"state\":\"DOWN\",\"rtt\":{\"avg\":0,\"cnt\":0}}}}";

    memset(&st, 0, sizeof(st));
    CHECK(sink_stats_parse(stats_json, strlen(stats_json), NULL, &st));
    CHECK(st.known);
    CHECK_EQ_INT(st.nbrokers, 2); /* internal and logical left out */
    CHECK_EQ_INT(st.brokers_up, 1);
    CHECK(broker(&st, ":0/internal") == NULL);
    CHECK(broker(&st, "localhost:9092/1") != NULL && broker(&st, "localhost:9092/1")->up);
    CHECK_EQ_INT(broker(&st, "localhost:9092/1")->rtt_us, 1800);
    CHECK_EQ_INT(broker(&st, "127.0.0.1:9092/bootstrap")->rtt_us, -1);
    CHECK(!broker(&st, "127.0.0.1:9092/bootstrap")->up);

    /* an empty rtt window keeps the last measured value */
    CHECK(sink_stats_parse(idle, strlen(idle), &st, &next));
    CHECK_EQ_INT(broker(&next, "localhost:9092/1")->rtt_us, 1800);

    /* ALL_BROKERS_DOWN stays until a broker is up again */
    prev = next;
    prev.all_brokers_down = true;
    CHECK(sink_stats_parse(down, strlen(down), &prev, &next));
    CHECK(next.all_brokers_down);
    CHECK_EQ_INT(next.brokers_up, 0);
    prev = next;
    CHECK(sink_stats_parse(idle, strlen(idle), &prev, &next));
    CHECK(!next.all_brokers_down);
    /* parsing in place (what the stats callback does) */
    CHECK(sink_stats_parse(stats_json, strlen(stats_json), &next, &next));
    CHECK_EQ_INT(next.nbrokers, 2);

    /* not statistics: nothing changes */
    next.nbrokers = 7;
    CHECK(!sink_stats_parse("[1,2]", 5, NULL, &next));
    CHECK(!sink_stats_parse("{\"brokers\":", 11, NULL, &next));
    CHECK(!sink_stats_parse("", 0, NULL, &next));
    CHECK_EQ_INT(next.nbrokers, 7);
}

static void test_kafka_stats_many_brokers(void)
{
    char json[16384];
    size_t n = 0;
    struct sink_stats st;

    n += (size_t)snprintf(json + n, sizeof(json) - n, "{\"brokers\":{");
    for (int i = 0; i < SINK_MAX_BROKERS + 5; i++)
        n +=
            (size_t)snprintf(json + n, sizeof(json) - n,
                             "%s\"b%d\":{\"name\":\"b%d\",\"source\":\"learned\",\"state\":\"UP\"}",
                             i ? "," : "", i, i);
    n += (size_t)snprintf(json + n, sizeof(json) - n, "}}");
    CHECK(sink_stats_parse(json, n, NULL, &st));
    CHECK_EQ_INT(st.nbrokers, SINK_MAX_BROKERS);
    CHECK_EQ_INT(st.brokers_up, SINK_MAX_BROKERS);
}

int main(void)
{
    RUN(test_render_parses_back);
    RUN(test_render_idle_and_clamped);
    RUN(test_render_latency_histograms);
    RUN(test_parser_rejects_garbage);
    RUN(test_ready);
    RUN(test_board);
    RUN(test_kafka_stats_parse);
    RUN(test_kafka_stats_many_brokers);
    return check_summary();
}
