/*
 * Metrics registry and Prometheus text rendering (see api_metrics.h). The hot
 * path is relaxed atomic adds into fixed arrays indexed by route, method and
 * status, so it never allocates or locks. Label values come from static tables
 * here, so none needs escaping. Must never do I/O or log.
 */
#include "api_metrics.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler.h"
#include "xmem.h"

/* Bucket upper bounds in microseconds: 1 ms to 10 s. */
static const int64_t bucket_us[API_METRICS_NBUCKETS] = {
    1000,   2500,   5000,    10000,   25000,   50000,    100000,
    250000, 500000, 1000000, 2500000, 5000000, 10000000,
};
static const struct prom_buckets buckets = {bucket_us, API_METRICS_NBUCKETS};

/* Indexed by enum router_route. */
static const char *const route_names[ROUTER_ROUTE_COUNT] = {
    [ROUTER_ROUTE_NONE] = "unknown",        [ROUTER_ROUTE_ORDER_CREATE] = "post_orders",
    [ROUTER_ROUTE_ORDER_GET] = "get_order", [ROUTER_ROUTE_HEALTHZ] = "healthz",
    [ROUTER_ROUTE_READYZ] = "readyz",       [ROUTER_ROUTE_METRICS] = "metrics",
};

/* Indexed by enum api_metrics_method. */
static const char *const method_names[API_METRICS_NMETHODS] = {
    "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "OTHER",
};

/* Every status http.c sends; the last slot counts anything else, as "other". */
static const unsigned statuses[API_METRICS_NSTATUS - 1] = {
    200, 201, 400, 404, 405, 413, 415, 422, 500, 503,
};
static const char *const status_names[API_METRICS_NSTATUS] = {
    "200", "201", "400", "404", "405", "413", "415", "422", "500", "503", "other",
};

struct atomic_hist {
    _Atomic uint64_t bucket[API_METRICS_NBUCKETS + 1];
    _Atomic uint64_t sum_us;
};

struct api_metrics {
    _Atomic uint64_t requests[ROUTER_ROUTE_COUNT][API_METRICS_NMETHODS][API_METRICS_NSTATUS];
    struct atomic_hist duration[ROUTER_ROUTE_COUNT];
    _Atomic uint64_t orders_created;
    _Atomic uint64_t idempotent_replays;
    int64_t start_unix_us; /* written once, before any thread sees m */
};

static int status_index(unsigned status)
{
    for (int i = 0; i < API_METRICS_NSTATUS - 1; i++) {
        if (statuses[i] == status)
            return i;
    }
    return API_METRICS_NSTATUS - 1;
}

struct api_metrics *api_metrics_new(int64_t start_unix_us)
{
    struct api_metrics *m = xmalloc(sizeof(*m));

    for (int r = 0; r < ROUTER_ROUTE_COUNT; r++) {
        for (int me = 0; me < API_METRICS_NMETHODS; me++) {
            for (int s = 0; s < API_METRICS_NSTATUS; s++)
                atomic_init(&m->requests[r][me][s], 0);
        }
        for (int b = 0; b <= API_METRICS_NBUCKETS; b++)
            atomic_init(&m->duration[r].bucket[b], 0);
        atomic_init(&m->duration[r].sum_us, 0);
    }
    atomic_init(&m->orders_created, 0);
    atomic_init(&m->idempotent_replays, 0);
    m->start_unix_us = start_unix_us;
    return m;
}

void api_metrics_free(struct api_metrics *m)
{
    free(m);
}

void api_metrics_request_done(struct api_metrics *m, enum router_route route,
                              enum api_metrics_method method, unsigned status, int64_t duration_us)
{
    uint64_t us = duration_us > 0 ? (uint64_t)duration_us : 0;
    int r = (int)route >= 0 && (int)route < ROUTER_ROUTE_COUNT ? (int)route : 0;
    int me = (int)method >= 0 && (int)method < API_METRICS_NMETHODS ? (int)method
                                                                    : API_METRICS_METHOD_OTHER;

    /* Relaxed: each counter is independent; nothing is published through them. */
    atomic_fetch_add_explicit(&m->requests[r][me][status_index(status)], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->duration[r].bucket[prom_bucket_index(&buckets, (int64_t)us)], 1,
                              memory_order_relaxed);
    atomic_fetch_add_explicit(&m->duration[r].sum_us, us, memory_order_relaxed);
}

void api_metrics_order_answered(struct api_metrics *m, bool replayed)
{
    atomic_fetch_add_explicit(replayed ? &m->idempotent_replays : &m->orders_created, 1,
                              memory_order_relaxed);
}

void api_metrics_read(const struct api_metrics *m, struct api_metrics_snapshot *out)
{
    memset(out, 0, sizeof(*out));
    for (int r = 0; r < ROUTER_ROUTE_COUNT; r++) {
        for (int me = 0; me < API_METRICS_NMETHODS; me++) {
            for (int s = 0; s < API_METRICS_NSTATUS; s++)
                out->requests[r][me][s] =
                    atomic_load_explicit(&m->requests[r][me][s], memory_order_relaxed);
        }
        for (int b = 0; b <= API_METRICS_NBUCKETS; b++)
            out->duration[r].h.bucket[b] =
                atomic_load_explicit(&m->duration[r].bucket[b], memory_order_relaxed);
        out->duration[r].h.sum_us =
            atomic_load_explicit(&m->duration[r].sum_us, memory_order_relaxed);
    }
    out->orders_created = atomic_load_explicit(&m->orders_created, memory_order_relaxed);
    out->idempotent_replays = atomic_load_explicit(&m->idempotent_replays, memory_order_relaxed);
    out->start_unix_us = m->start_unix_us;
    out->process.start_time_s = (double)m->start_unix_us / 1e6;
}

enum api_metrics_method api_metrics_method(const char *method)
{
    if (method == NULL)
        return API_METRICS_METHOD_OTHER;
    for (int i = 0; i < API_METRICS_METHOD_OTHER; i++) {
        if (strcmp(method, method_names[i]) == 0)
            return (enum api_metrics_method)i;
    }
    return API_METRICS_METHOD_OTHER;
}

void api_metrics_hist_observe(struct api_metrics_hist *h, uint64_t us)
{
    prom_hist_observe(&h->h, &buckets, (int64_t)us);
}

/* ---- rendering ---- */

/* The series every endpoint shows from the start (at 0): its usual method and success. */
static bool always_shown(int route, int method, int status)
{
    switch (route) {
    case ROUTER_ROUTE_ORDER_CREATE:
        return method == API_METRICS_METHOD_POST && statuses[status] == 201;
    case ROUTER_ROUTE_ORDER_GET:
    case ROUTER_ROUTE_HEALTHZ:
    case ROUTER_ROUTE_READYZ:
    case ROUTER_ROUTE_METRICS:
        return method == API_METRICS_METHOD_GET && statuses[status] == 200;
    default:
        return false;
    }
}

char *api_metrics_render(const struct api_metrics_snapshot *s)
{
    struct prom_buf b;
    char labels[64];

    prom_init(&b);
    prom_family(&b, "orders_api_http_requests_total", "counter",
                "HTTP requests answered, by endpoint (route), method and status.");
    for (int r = 0; r < ROUTER_ROUTE_COUNT; r++) {
        for (int me = 0; me < API_METRICS_NMETHODS; me++) {
            for (int st = 0; st < API_METRICS_NSTATUS; st++) {
                uint64_t v = s->requests[r][me][st];

                if (v == 0 && (st == API_METRICS_NSTATUS - 1 || !always_shown(r, me, st)))
                    continue;
                snprintf(labels, sizeof(labels), "route=\"%s\",method=\"%s\",status=\"%s\"",
                         route_names[r], method_names[me], status_names[st]);
                prom_u64(&b, "orders_api_http_requests_total", labels, v);
            }
        }
    }

    prom_family(&b, "orders_api_http_request_duration_seconds", "histogram",
                "Time from the request's headers to the end of its answer, by endpoint (route).");
    for (int r = 0; r < ROUTER_ROUTE_COUNT; r++) {
        snprintf(labels, sizeof(labels), "route=\"%s\"", route_names[r]);
        prom_histogram(&b, "orders_api_http_request_duration_seconds", labels, &buckets,
                       &s->duration[r].h);
    }

    prom_family(&b, "orders_api_http_requests_in_flight", "gauge",
                "Requests begun and not yet completed, this scrape included.");
    prom_i64(&b, "orders_api_http_requests_in_flight", NULL, s->in_flight);

    prom_metric_u64(&b, "orders_api_orders_created_total", "counter",
                    "Orders written by POST /orders (201 answers that were not replays).",
                    s->orders_created);
    prom_metric_u64(&b, "orders_api_idempotent_replays_total", "counter",
                    "POST /orders answered from a stored Idempotency-Key (nothing written).",
                    s->idempotent_replays);

    if (s->pool.known) {
        prom_family(&b, "orders_api_db_pool_connections", "gauge",
                    "Pooled database connections by state; idle + busy = --pool-size.");
        prom_i64(&b, "orders_api_db_pool_connections", "state=\"idle\"",
                 s->pool.size - s->pool.busy);
        prom_i64(&b, "orders_api_db_pool_connections", "state=\"busy\"", s->pool.busy);

        prom_family(&b, "orders_api_db_pool_wait_seconds", "histogram",
                    "Time a request waited for a pooled connection (0 when one was free).");
        prom_histogram(&b, "orders_api_db_pool_wait_seconds", NULL, &buckets, &s->pool.wait.h);

        prom_metric_u64(&b, "orders_api_db_pool_timeouts_total", "counter",
                        "Waits for a pooled connection that hit --db-timeout-ms (answered 503).",
                        s->pool.timeouts);
    }

    prom_process(&b, &s->process);
    if (s->libs != NULL)
        version_build_info(&b, "orders_api_build_info",
                           "Always 1: the orders-api version and the libraries it runs with.",
                           s->libs);
    return prom_take(&b);
}
