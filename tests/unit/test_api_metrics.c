/*
 * orders-api metrics (api/api_metrics.c): method and bucket classification,
 * the atomic registry (also from several threads at once), and the rendering,
 * which is parsed back with a small Prometheus text-format parser here rather
 * than compared as text. No servers, no network.
 */
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_metrics.h"
#include "unit/check.h"

/* ---- a Prometheus text format (0.0.4) parser, strict where ours must be ---- */

#define P_MAX_SAMPLES  1024
#define P_MAX_FAMILIES 32
#define P_MAX_LABELS   4
#define P_NAME_MAX     96
#define P_VALUE_MAX    64

struct p_label {
    char name[P_NAME_MAX];
    char value[P_VALUE_MAX];
};

struct p_sample {
    char name[P_NAME_MAX];
    struct p_label labels[P_MAX_LABELS];
    int nlabels;
    double value;
    int family;
};

struct p_family {
    char name[P_NAME_MAX];
    char type[16];
    bool has_help, has_type, has_samples;
};

struct expo {
    struct p_sample s[P_MAX_SAMPLES];
    int ns;
    struct p_family f[P_MAX_FAMILIES];
    int nf;
    int errors;
};

static bool p_quiet; /* set while feeding the parser text it must reject */

static void p_error(struct expo *e, int line, const char *what)
{
    e->errors++;
    if (!p_quiet)
        fprintf(stderr, "exposition line %d: %s\n", line, what);
}

static bool name_char(char c, bool first, bool colon)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon && c == ':') ||
           (!first && c >= '0' && c <= '9');
}

/* Reads a metric (colon=true) or label name at *p into out. */
static bool read_name(const char **p, char *out, bool colon)
{
    size_t n = 0;

    while (name_char((*p)[n], n == 0, colon))
        n++;
    if (n == 0 || n >= P_NAME_MAX)
        return false;
    memcpy(out, *p, n);
    out[n] = '\0';
    *p += n;
    return true;
}

/* {name="value",...} with \\, \" and \n escapes; an optional trailing comma. */
static bool read_labels(const char **p, struct p_label *labels, int *nlabels)
{
    const char *s = *p;

    *nlabels = 0;
    if (*s != '{')
        return true;
    s++;
    while (*s != '}') {
        struct p_label *l;
        size_t n = 0;

        if (*nlabels == P_MAX_LABELS)
            return false;
        l = &labels[(*nlabels)++];
        if (!read_name(&s, l->name, false) || *s++ != '=' || *s++ != '"')
            return false;
        while (*s != '"') {
            char c = *s++;

            if (c == '\0' || c == '\n' || n + 1 >= P_VALUE_MAX)
                return false;
            if (c == '\\') {
                c = *s++;
                if (c == 'n')
                    c = '\n';
                else if (c != '\\' && c != '"')
                    return false;
            }
            l->value[n++] = c;
        }
        l->value[n] = '\0';
        s++;
        for (int i = 0; i < *nlabels - 1; i++) {
            if (strcmp(labels[i].name, l->name) == 0)
                return false; /* a label twice */
        }
        if (*s == ',')
            s++;
        else if (*s != '}')
            return false;
    }
    *p = s + 1;
    return true;
}

static int find_family(const struct expo *e, const char *name)
{
    for (int i = 0; i < e->nf; i++) {
        if (strcmp(e->f[i].name, name) == 0)
            return i;
    }
    return -1;
}

static bool has_suffix(const char *s, const char *suffix, size_t *stem)
{
    size_t n = strlen(s), k = strlen(suffix);

    if (n <= k || strcmp(s + n - k, suffix) != 0)
        return false;
    *stem = n - k;
    return true;
}

/* The family a sample name belongs to: itself, or a histogram's _bucket/_sum/_count. */
static int sample_family(const struct expo *e, const char *name)
{
    static const char *const suffixes[] = {"_bucket", "_sum", "_count"};
    int f = find_family(e, name);

    if (f >= 0 && strcmp(e->f[f].type, "histogram") != 0)
        return f;
    for (size_t i = 0; i < 3; i++) {
        char stem[P_NAME_MAX];
        size_t n;

        if (has_suffix(name, suffixes[i], &n)) {
            memcpy(stem, name, n);
            stem[n] = '\0';
            f = find_family(e, stem);
            if (f >= 0 && strcmp(e->f[f].type, "histogram") == 0)
                return f;
        }
    }
    return -1;
}

static bool same_labels(const struct p_label *a, int na, const struct p_label *b, int nb,
                        const char *skip)
{
    int ca = 0, cb = 0;

    for (int i = 0; i < na; i++) {
        bool found = false;

        if (skip != NULL && strcmp(a[i].name, skip) == 0)
            continue;
        ca++;
        for (int j = 0; j < nb; j++)
            found |= strcmp(a[i].name, b[j].name) == 0 && strcmp(a[i].value, b[j].value) == 0;
        if (!found)
            return false;
    }
    for (int j = 0; j < nb; j++)
        cb += skip == NULL || strcmp(b[j].name, skip) != 0;
    return ca == cb;
}

static void parse_sample(struct expo *e, int line, const char *s, int current)
{
    struct p_sample *smp;
    char *end;

    if (e->ns == P_MAX_SAMPLES) {
        p_error(e, line, "too many samples");
        return;
    }
    smp = &e->s[e->ns];
    memset(smp, 0, sizeof(*smp));
    if (!read_name(&s, smp->name, true) || !read_labels(&s, smp->labels, &smp->nlabels) ||
        *s++ != ' ') {
        p_error(e, line, "bad sample syntax");
        return;
    }
    smp->value = strtod(s, &end);
    if (end == s || (*end != '\0' && *end != ' ')) {
        p_error(e, line, "bad sample value");
        return;
    }
    smp->family = sample_family(e, smp->name);
    if (smp->family < 0 || !e->f[smp->family].has_type || !e->f[smp->family].has_help) {
        p_error(e, line, "sample without a # HELP and # TYPE family");
        return;
    }
    if (smp->family != current) {
        p_error(e, line, "sample away from its family's block");
        return;
    }
    for (int i = 0; i < e->ns; i++) {
        if (strcmp(e->s[i].name, smp->name) == 0 &&
            same_labels(e->s[i].labels, e->s[i].nlabels, smp->labels, smp->nlabels, NULL)) {
            p_error(e, line, "duplicate series");
            return;
        }
    }
    e->f[smp->family].has_samples = true;
    e->ns++;
}

/* # HELP name text / # TYPE name type; returns the family index, or -1. */
static int parse_comment(struct expo *e, int line, const char *s)
{
    bool help = strncmp(s, "# HELP ", 7) == 0, type = strncmp(s, "# TYPE ", 7) == 0;
    char name[P_NAME_MAX];
    struct p_family *f;
    int fi;

    if (!help && !type)
        return -1; /* a plain comment */
    s += 7;
    if (!read_name(&s, name, true) || *s++ != ' ' || *s == '\0') {
        p_error(e, line, "bad # HELP/# TYPE line");
        return -1;
    }
    fi = find_family(e, name);
    if (fi < 0) {
        if (e->nf == P_MAX_FAMILIES) {
            p_error(e, line, "too many families");
            return -1;
        }
        fi = e->nf++;
        memset(&e->f[fi], 0, sizeof(e->f[fi]));
        snprintf(e->f[fi].name, sizeof(e->f[fi].name), "%s", name);
    }
    f = &e->f[fi];
    if (f->has_samples || (help && f->has_help) || (type && f->has_type)) {
        p_error(e, line, "family declared twice or after its samples");
        return fi;
    }
    if (help) {
        f->has_help = true;
    } else {
        static const char *const types[] = {"counter", "gauge", "histogram", "summary", "untyped"};
        bool ok = false;

        for (size_t i = 0; i < 5; i++)
            ok |= strcmp(s, types[i]) == 0;
        if (!ok)
            p_error(e, line, "unknown # TYPE");
        snprintf(f->type, sizeof(f->type), "%s", s);
        f->has_type = true;
    }
    return fi;
}

/* Histogram rules: le ascending, counts cumulative, +Inf last and equal to _count, a _sum. */
static void check_histograms(struct expo *e)
{
    for (int i = 0; i < e->ns; i++) {
        const struct p_sample *c = &e->s[i];
        const char *fname = e->f[c->family].name;
        char want[P_NAME_MAX + 8], sum[P_NAME_MAX + 8];
        double prev_le = -INFINITY, prev_v = 0, inf_v = NAN;
        bool have_sum = false;

        if (strcmp(e->f[c->family].type, "histogram") != 0)
            continue;
        snprintf(want, sizeof(want), "%s_count", fname);
        if (strcmp(c->name, want) != 0)
            continue;
        snprintf(want, sizeof(want), "%s_bucket", fname);
        snprintf(sum, sizeof(sum), "%s_sum", fname);
        for (int j = 0; j < e->ns; j++) {
            const struct p_sample *b = &e->s[j];
            const char *le = NULL;

            if (b->family != c->family ||
                !same_labels(b->labels, b->nlabels, c->labels, c->nlabels, "le"))
                continue;
            if (strcmp(b->name, sum) == 0)
                have_sum = true;
            if (strcmp(b->name, want) != 0)
                continue;
            for (int k = 0; k < b->nlabels; k++) {
                if (strcmp(b->labels[k].name, "le") == 0)
                    le = b->labels[k].value;
            }
            if (le == NULL || !isnan(inf_v)) {
                p_error(e, 0, "bucket without le, or after +Inf");
                continue;
            }
            if (strtod(le, NULL) <= prev_le || b->value < prev_v)
                p_error(e, 0, "buckets not ascending or not cumulative");
            prev_le = strtod(le, NULL);
            prev_v = b->value;
            if (strcmp(le, "+Inf") == 0)
                inf_v = b->value;
        }
        if (isnan(inf_v) || inf_v != c->value)
            p_error(e, 0, "+Inf bucket missing or not equal to _count");
        if (!have_sum)
            p_error(e, 0, "histogram without _sum");
    }
}

static void expo_parse(struct expo *e, const char *text)
{
    int line = 0, current = -1;
    const char *p = text;

    memset(e, 0, sizeof(*e));
    if (*text == '\0' || text[strlen(text) - 1] != '\n')
        p_error(e, 0, "text does not end with a newline");
    while (*p != '\0') {
        const char *nl = strchr(p, '\n');
        size_t n = nl != NULL ? (size_t)(nl - p) : strlen(p);
        char buf[512];

        line++;
        if (n >= sizeof(buf)) {
            p_error(e, line, "line too long");
        } else if (n > 0) {
            memcpy(buf, p, n);
            buf[n] = '\0';
            if (buf[0] == '#') {
                int f = parse_comment(e, line, buf);

                if (f >= 0)
                    current = f;
            } else {
                parse_sample(e, line, buf, current);
            }
        }
        p += n + (nl != NULL);
    }
    for (int i = 0; i < e->nf; i++) {
        size_t stem;

        if (strcmp(e->f[i].type, "counter") == 0 && !has_suffix(e->f[i].name, "_total", &stem))
            p_error(e, 0, "counter name does not end in _total");
    }
    check_histograms(e);
}

/*
 * The value of the series name{labels}; labels in exposition syntax without
 * braces, any order (e.g. "method=\"GET\",route=\"healthz\""). NAN if absent.
 */
static double expo_get(const struct expo *e, const char *name, const char *labels)
{
    char braced[256];
    const char *p = braced;
    struct p_label want[P_MAX_LABELS];
    int nwant = 0;

    snprintf(braced, sizeof(braced), "{%s}", labels);
    if (labels[0] != '\0' && !read_labels(&p, want, &nwant))
        return NAN;
    for (int i = 0; i < e->ns; i++) {
        if (strcmp(e->s[i].name, name) == 0 &&
            same_labels(e->s[i].labels, e->s[i].nlabels, want, nwant, NULL))
            return e->s[i].value;
    }
    return NAN;
}

static bool expo_has_family(const struct expo *e, const char *name, const char *type)
{
    int f = find_family(e, name);

    return f >= 0 && strcmp(e->f[f].type, type) == 0;
}

#define CHECK_VAL(e, name, labels, want)                                                           \
    do {                                                                                           \
        double check_v_ = expo_get((e), (name), (labels));                                         \
        if (check_v_ == (double)(want)) {                                                          \
            check_passed++;                                                                        \
        } else {                                                                                   \
            check_failed++;                                                                        \
            fprintf(stderr, "FAIL %s:%d: %s{%s} == %s (%g)\n", __FILE__, __LINE__, (name),         \
                    (labels), #want, check_v_);                                                    \
        }                                                                                          \
    } while (0)

/* Renders s. Returns new (free()). */
static char *render(const struct api_metrics_snapshot *s)
{
    return api_metrics_render(s);
}

/* ---- the tests ---- */

static void test_parser_rejects(void)
{
    /* The parser is the oracle of the other tests: it must catch what it claims to. */
    static const char *const bad[] = {
        "x_total 1\n",                                                      /* no family */
        "# HELP x_total h\n# TYPE x_total counter\nx_total one\n",          /* bad value */
        "# HELP x h\n# TYPE x counter\nx 1\n",                              /* no _total */
        "# HELP x_total h\n# TYPE x_total counter\nx_total 1\nx_total 2\n", /* duplicate */
        "# HELP x_total h\n# TYPE x_total counter\nx_total{a=\"1\"} 1",     /* no final newline */
        "# HELP h h\n# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\n"
        "h_sum 0\nh_count 1\n", /* not cumulative */
        "# HELP h h\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\n"
        "h_sum 0\nh_count 3\n", /* +Inf != _count */
        "# HELP h h\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 0\nh_count 1\n", /* no +Inf */
        "# HELP g h\n# TYPE g gauge\ng{a=\"1\",a=\"2\"} 1\n",            /* label twice */
        "# HELP g h\n# TYPE g gauge\n# HELP f h\n# TYPE f gauge\ng 1\n", /* away from block */
        "# HELP g h\n# TYPE g meter\ng 1\n",                             /* unknown type */
    };
    struct expo *e = malloc(sizeof(*e));

    p_quiet = true;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        expo_parse(e, bad[i]);
        if (e->errors == 0)
            fprintf(stderr, "FAIL parser accepted case %zu\n", i);
        CHECK(e->errors > 0);
    }
    p_quiet = false;
    expo_parse(e, "# HELP h h\n# TYPE h histogram\nh_bucket{x=\"a\\\"b\",le=\"1\"} 1\n"
                  "h_bucket{x=\"a\\\"b\",le=\"+Inf\"} 2\nh_sum{x=\"a\\\"b\"} 0.5\n"
                  "h_count{x=\"a\\\"b\"} 2\n");
    CHECK_EQ_INT(e->errors, 0);
    CHECK_VAL(e, "h_count", "x=\"a\\\"b\"", 2);
    free(e);
}

static void test_method(void)
{
    CHECK_EQ_INT(api_metrics_method("GET"), API_METRICS_METHOD_GET);
    CHECK_EQ_INT(api_metrics_method("HEAD"), API_METRICS_METHOD_HEAD);
    CHECK_EQ_INT(api_metrics_method("POST"), API_METRICS_METHOD_POST);
    CHECK_EQ_INT(api_metrics_method("PUT"), API_METRICS_METHOD_PUT);
    CHECK_EQ_INT(api_metrics_method("DELETE"), API_METRICS_METHOD_DELETE);
    CHECK_EQ_INT(api_metrics_method("PATCH"), API_METRICS_METHOD_PATCH);
    CHECK_EQ_INT(api_metrics_method("OPTIONS"), API_METRICS_METHOD_OPTIONS);
    CHECK_EQ_INT(api_metrics_method("get"), API_METRICS_METHOD_OTHER);
    CHECK_EQ_INT(api_metrics_method("BREW"), API_METRICS_METHOD_OTHER);
    CHECK_EQ_INT(api_metrics_method(""), API_METRICS_METHOD_OTHER);
    CHECK_EQ_INT(api_metrics_method(NULL), API_METRICS_METHOD_OTHER);
}

/* The route label comes from router_match's endpoint: the path's endpoint, whatever the method. */
static void test_router_endpoint(void)
{
    static const struct {
        const char *method, *path;
        enum router_status st;
        enum router_route route, endpoint;
    } cases[] = {
        {"GET", "/metrics", ROUTER_OK, ROUTER_ROUTE_METRICS, ROUTER_ROUTE_METRICS},
        {"HEAD", "/metrics", ROUTER_OK, ROUTER_ROUTE_METRICS, ROUTER_ROUTE_METRICS},
        {"POST", "/metrics", ROUTER_EMETHOD, ROUTER_ROUTE_NONE, ROUTER_ROUTE_METRICS},
        {"GET", "/metrics/", ROUTER_ENOTFOUND, ROUTER_ROUTE_NONE, ROUTER_ROUTE_NONE},
        {"GET", "/Metrics", ROUTER_ENOTFOUND, ROUTER_ROUTE_NONE, ROUTER_ROUTE_NONE},
        {"POST", "/orders", ROUTER_OK, ROUTER_ROUTE_ORDER_CREATE, ROUTER_ROUTE_ORDER_CREATE},
        {"DELETE", "/orders", ROUTER_EMETHOD, ROUTER_ROUTE_NONE, ROUTER_ROUTE_ORDER_CREATE},
        {"GET", "/orders/123e4567-e89b-12d3-a456-426614174000", ROUTER_OK, ROUTER_ROUTE_ORDER_GET,
         ROUTER_ROUTE_ORDER_GET},
        {"GET", "/orders/nope", ROUTER_EBADID, ROUTER_ROUTE_NONE, ROUTER_ROUTE_ORDER_GET},
        {"PUT", "/orders/nope", ROUTER_EMETHOD, ROUTER_ROUTE_NONE, ROUTER_ROUTE_ORDER_GET},
        {"GET", "/orders/", ROUTER_ENOTFOUND, ROUTER_ROUTE_NONE, ROUTER_ROUTE_NONE},
        {"GET", "/healthz", ROUTER_OK, ROUTER_ROUTE_HEALTHZ, ROUTER_ROUTE_HEALTHZ},
        {"BREW", "/healthz", ROUTER_EMETHOD, ROUTER_ROUTE_NONE, ROUTER_ROUTE_HEALTHZ},
        {"OPTIONS", "/readyz", ROUTER_EMETHOD, ROUTER_ROUTE_NONE, ROUTER_ROUTE_READYZ},
        {"GET", "/nope", ROUTER_ENOTFOUND, ROUTER_ROUTE_NONE, ROUTER_ROUTE_NONE},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct router_match m;

        CHECK_EQ_INT(router_match(cases[i].method, cases[i].path, &m), cases[i].st);
        CHECK_EQ_INT(m.route, cases[i].route);
        CHECK_EQ_INT(m.endpoint, cases[i].endpoint);
        if (cases[i].endpoint == ROUTER_ROUTE_METRICS)
            CHECK_STR(m.allow, "GET, HEAD");
    }
}

static void test_buckets(void)
{
    /* (value µs, bucket it lands in): `le` bounds are inclusive. */
    static const struct {
        uint64_t us;
        int bucket;
    } cases[] = {
        {0, 0},       {1000, 0},     {1001, 1},      {2500, 1},      {2501, 2},        {999999, 9},
        {1000000, 9}, {1000001, 10}, {10000000, 12}, {10000001, 13}, {UINT32_MAX, 13},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct api_metrics_hist h;

        memset(&h, 0, sizeof(h));
        api_metrics_hist_observe(&h, cases[i].us);
        CHECK_EQ_U64(h.h.bucket[cases[i].bucket], 1);
        CHECK_EQ_U64(h.h.sum_us, cases[i].us);
    }
}

static void test_registry_and_render(void)
{
    struct api_metrics *m = api_metrics_new(INT64_C(1795737600123456));
    struct api_metrics_snapshot *s = malloc(sizeof(*s));
    struct expo *e = malloc(sizeof(*e));
    char *text;

    api_metrics_request_done(m, ROUTER_ROUTE_ORDER_CREATE, API_METRICS_METHOD_POST, 201, 1500);
    api_metrics_request_done(m, ROUTER_ROUTE_ORDER_CREATE, API_METRICS_METHOD_POST, 201, 700);
    api_metrics_request_done(m, ROUTER_ROUTE_ORDER_CREATE, API_METRICS_METHOD_POST, 400, 300);
    api_metrics_request_done(m, ROUTER_ROUTE_ORDER_CREATE, API_METRICS_METHOD_DELETE, 405, 100);
    api_metrics_request_done(m, ROUTER_ROUTE_ORDER_GET, API_METRICS_METHOD_HEAD, 404, 20000000);
    api_metrics_request_done(m, ROUTER_ROUTE_NONE, API_METRICS_METHOD_OTHER, 404, -5);
    api_metrics_request_done(m, ROUTER_ROUTE_READYZ, API_METRICS_METHOD_GET, 418, 10);
    api_metrics_order_answered(m, false);
    api_metrics_order_answered(m, false);
    api_metrics_order_answered(m, true);
    api_metrics_read(m, s);
    s->in_flight = 3;
    s->pool.known = true;
    s->pool.size = 8;
    s->pool.busy = 3;
    api_metrics_hist_observe(&s->pool.wait, 0);
    api_metrics_hist_observe(&s->pool.wait, 0);
    api_metrics_hist_observe(&s->pool.wait, 5000001);
    s->pool.timeouts = 1;

    text = render(s);
    expo_parse(e, text);
    CHECK_EQ_INT(e->errors, 0);

    CHECK(expo_has_family(e, "orders_api_http_requests_total", "counter"));
    CHECK(expo_has_family(e, "orders_api_http_request_duration_seconds", "histogram"));
    CHECK(expo_has_family(e, "orders_api_http_requests_in_flight", "gauge"));
    CHECK(expo_has_family(e, "orders_api_orders_created_total", "counter"));
    CHECK(expo_has_family(e, "orders_api_idempotent_replays_total", "counter"));
    CHECK(expo_has_family(e, "orders_api_db_pool_connections", "gauge"));
    CHECK(expo_has_family(e, "orders_api_db_pool_wait_seconds", "histogram"));
    CHECK(expo_has_family(e, "orders_api_db_pool_timeouts_total", "counter"));
    CHECK(expo_has_family(e, "process_start_time_seconds", "gauge"));

    const char *req = "orders_api_http_requests_total";

    CHECK_VAL(e, req, "route=\"post_orders\",method=\"POST\",status=\"201\"", 2);
    CHECK_VAL(e, req, "status=\"400\",route=\"post_orders\",method=\"POST\"", 1);
    CHECK_VAL(e, req, "route=\"post_orders\",method=\"DELETE\",status=\"405\"", 1);
    CHECK_VAL(e, req, "route=\"get_order\",method=\"HEAD\",status=\"404\"", 1);
    CHECK_VAL(e, req, "route=\"unknown\",method=\"OTHER\",status=\"404\"", 1);
    /* A status outside the table is still counted, as "other". */
    CHECK_VAL(e, req, "route=\"readyz\",method=\"GET\",status=\"other\"", 1);
    /* Each endpoint's usual series is shown from the start; other zeros are not. */
    CHECK_VAL(e, req, "route=\"get_order\",method=\"GET\",status=\"200\"", 0);
    CHECK_VAL(e, req, "route=\"healthz\",method=\"GET\",status=\"200\"", 0);
    CHECK_VAL(e, req, "route=\"metrics\",method=\"GET\",status=\"200\"", 0);
    CHECK(isnan(expo_get(e, req, "route=\"healthz\",method=\"GET\",status=\"503\"")));
    CHECK(isnan(expo_get(e, req, "route=\"post_orders\",method=\"POST\",status=\"other\"")));

    const char *bkt = "orders_api_http_request_duration_seconds_bucket";

    /* post_orders: 100 µs, 300 µs, 700 µs, 1500 µs */
    CHECK_VAL(e, bkt, "route=\"post_orders\",le=\"0.001\"", 3);
    CHECK_VAL(e, bkt, "route=\"post_orders\",le=\"0.0025\"", 4);
    CHECK_VAL(e, bkt, "route=\"post_orders\",le=\"10\"", 4);
    CHECK_VAL(e, bkt, "route=\"post_orders\",le=\"+Inf\"", 4);
    CHECK_VAL(e, "orders_api_http_request_duration_seconds_count", "route=\"post_orders\"", 4);
    CHECK_VAL(e, "orders_api_http_request_duration_seconds_sum", "route=\"post_orders\"", 0.0026);
    /* get_order: 20 s is above every finite bucket */
    CHECK_VAL(e, bkt, "route=\"get_order\",le=\"10\"", 0);
    CHECK_VAL(e, bkt, "route=\"get_order\",le=\"+Inf\"", 1);
    CHECK_VAL(e, "orders_api_http_request_duration_seconds_sum", "route=\"get_order\"", 20);
    /* a negative duration (clock trouble) counts as 0 */
    CHECK_VAL(e, bkt, "route=\"unknown\",le=\"0.001\"", 1);
    CHECK_VAL(e, "orders_api_http_request_duration_seconds_sum", "route=\"unknown\"", 0);
    /* every route has a histogram, used or not */
    CHECK_VAL(e, "orders_api_http_request_duration_seconds_count", "route=\"healthz\"", 0);

    CHECK_VAL(e, "orders_api_http_requests_in_flight", "", 3);
    CHECK_VAL(e, "orders_api_orders_created_total", "", 2);
    CHECK_VAL(e, "orders_api_idempotent_replays_total", "", 1);
    CHECK_VAL(e, "orders_api_db_pool_connections", "state=\"idle\"", 5);
    CHECK_VAL(e, "orders_api_db_pool_connections", "state=\"busy\"", 3);
    CHECK_VAL(e, "orders_api_db_pool_wait_seconds_bucket", "le=\"0.001\"", 2);
    CHECK_VAL(e, "orders_api_db_pool_wait_seconds_bucket", "le=\"5\"", 2);
    CHECK_VAL(e, "orders_api_db_pool_wait_seconds_bucket", "le=\"10\"", 3);
    CHECK_VAL(e, "orders_api_db_pool_wait_seconds_count", "", 3);
    CHECK_VAL(e, "orders_api_db_pool_wait_seconds_sum", "", 5.000001);
    CHECK_VAL(e, "orders_api_db_pool_timeouts_total", "", 1);
    CHECK_VAL(e, "process_start_time_seconds", "", 1795737600.123456);
    /* Without /proc figures only the start time; no build info without libraries. */
    CHECK(find_family(e, "process_cpu_seconds_total") < 0);
    CHECK(find_family(e, "orders_api_build_info") < 0);
    free(text);

    /* The same process_* families as the relay's, and orders_api_build_info. */
    {
        static const struct version_libs libs = {"15.13", NULL, "2.14", "0.9.75"};

        s->libs = &libs;
        s->process.known = true;
        s->process.cpu_seconds = 1.5;
        s->process.resident_bytes = 4096;
        s->process.virtual_bytes = 8192;
        s->process.open_fds = 9;
        s->process.max_fds = 8192;
        text = render(s);
        expo_parse(e, text);
        CHECK_EQ_INT(e->errors, 0);
        CHECK(expo_has_family(e, "process_cpu_seconds_total", "counter"));
        CHECK(expo_has_family(e, "process_resident_memory_bytes", "gauge"));
        CHECK(expo_has_family(e, "process_open_fds", "gauge"));
        CHECK(expo_has_family(e, "process_max_fds", "gauge"));
        CHECK(expo_has_family(e, "orders_api_build_info", "gauge"));
        CHECK_VAL(e, "process_cpu_seconds_total", "", 1.5);
        CHECK_VAL(e, "process_open_fds", "", 9);
        CHECK_VAL(e, "process_max_fds", "", 8192);
        CHECK_VAL(e, "process_resident_memory_bytes", "", 4096);
        CHECK_VAL(e, "orders_api_build_info",
                  "version=\"" ORDERS_CDC_VERSION "\",libpq=\"15.13\",jansson=\"2.14\","
                  "libmicrohttpd=\"0.9.75\"",
                  1);
        free(text);
        s->libs = NULL;
        s->process.known = false;
    }

    /* Without a pool to report, its families are left out, and the rest still parses. */
    s->pool.known = false;
    text = render(s);
    expo_parse(e, text);
    CHECK_EQ_INT(e->errors, 0);
    CHECK(find_family(e, "orders_api_db_pool_connections") < 0);
    CHECK(find_family(e, "orders_api_db_pool_wait_seconds") < 0);
    CHECK_VAL(e, "orders_api_orders_created_total", "", 2);
    free(text);

    free(e);
    free(s);
    api_metrics_free(m);
}

static void test_render_fresh_and_large(void)
{
    struct api_metrics *m = api_metrics_new(0);
    struct api_metrics_snapshot *s = malloc(sizeof(*s));
    struct expo *e = malloc(sizeof(*e));
    char *text;

    /* Nothing counted yet. */
    api_metrics_read(m, s);
    text = render(s);
    expo_parse(e, text);
    CHECK_EQ_INT(e->errors, 0);
    CHECK_VAL(e, "orders_api_http_requests_total",
              "route=\"post_orders\",method=\"POST\",status=\"201\"", 0);
    CHECK_VAL(e, "orders_api_http_request_duration_seconds_count", "route=\"metrics\"", 0);
    free(text);

    /* Every series non-zero, with large values: the text outgrows any first guess. */
    for (int r = 0; r < ROUTER_ROUTE_COUNT; r++) {
        for (int me = 0; me < API_METRICS_NMETHODS; me++) {
            for (int st = 0; st < API_METRICS_NSTATUS; st++)
                s->requests[r][me][st] = UINT64_C(1) << 52;
        }
        for (int b = 0; b <= API_METRICS_NBUCKETS; b++)
            s->duration[r].h.bucket[b] = 1000 + (uint64_t)b;
        s->duration[r].h.sum_us = UINT64_C(123456789012);
    }
    text = render(s);
    CHECK(strlen(text) > 16 * 1024);
    expo_parse(e, text);
    CHECK_EQ_INT(e->errors, 0);
    CHECK_VAL(e, "orders_api_http_requests_total",
              "route=\"unknown\",method=\"PATCH\",status=\"other\"", 4503599627370496.0);
    CHECK_VAL(e, "orders_api_http_request_duration_seconds_count", "route=\"readyz\"",
              14 * 1000 + 91);
    CHECK_VAL(e, "orders_api_http_request_duration_seconds_sum", "route=\"readyz\"", 123456.789012);

    free(text);
    free(e);
    free(s);
    api_metrics_free(m);
    api_metrics_free(NULL);
}

#define THREADS      4
#define PER_THREAD   100000
#define THREAD_US(i) ((int64_t)(i) % 3 * 2000) /* 0, 2 ms, 4 ms */

static void *hammer(void *arg)
{
    struct api_metrics *m = arg;

    for (int i = 0; i < PER_THREAD; i++) {
        api_metrics_request_done(m, ROUTER_ROUTE_ORDER_CREATE, API_METRICS_METHOD_POST, 201,
                                 THREAD_US(i));
        api_metrics_order_answered(m, i % 10 == 0);
    }
    return NULL;
}

static void test_threads(void)
{
    struct api_metrics *m = api_metrics_new(1);
    struct api_metrics_snapshot *s = malloc(sizeof(*s));
    pthread_t t[THREADS];
    uint64_t sum = 0;

    for (int i = 0; i < THREADS; i++)
        CHECK_EQ_INT(pthread_create(&t[i], NULL, hammer, m), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < PER_THREAD; i++)
        sum += (uint64_t)THREAD_US(i);
    api_metrics_read(m, s);
    CHECK_EQ_U64(s->requests[ROUTER_ROUTE_ORDER_CREATE][API_METRICS_METHOD_POST][1],
                 THREADS * PER_THREAD);
    CHECK_EQ_U64(s->duration[ROUTER_ROUTE_ORDER_CREATE].h.sum_us, THREADS * sum);
    CHECK_EQ_U64(s->duration[ROUTER_ROUTE_ORDER_CREATE].h.bucket[0],
                 THREADS * (PER_THREAD / 3 + 1));
    CHECK_EQ_U64(s->idempotent_replays, THREADS * PER_THREAD / 10);
    CHECK_EQ_U64(s->orders_created + s->idempotent_replays, THREADS * PER_THREAD);
    free(s);
    api_metrics_free(m);
}

int main(void)
{
    RUN(test_parser_rejects);
    RUN(test_method);
    RUN(test_router_endpoint);
    RUN(test_buckets);
    RUN(test_registry_and_render);
    RUN(test_render_fresh_and_large);
    RUN(test_threads);
    return check_summary();
}
