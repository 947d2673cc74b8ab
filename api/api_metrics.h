/*
 * orders-api metrics: a registry of relaxed C11 atomic counters that the HTTP
 * worker threads bump (one atomic add per counter), a plain snapshot of it, and
 * the Prometheus text exposition of a snapshot. No I/O, no locks, no logging;
 * the rendering is a pure function of the snapshot. Names: docs/api.md#metrics.
 */
#ifndef ORDERS_API_API_METRICS_H
#define ORDERS_API_API_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "prom.h"
#include "router.h"
#include "version.h"

/* Content-Type of the exposition (Prometheus text format 0.0.4). */
#define API_METRICS_CONTENT_TYPE PROM_CONTENT_TYPE

/* Finite histogram buckets: 1 ms, 2.5 ms, ... 10 s (api_metrics.c has the bounds). */
#define API_METRICS_NBUCKETS 13

/* The method label: the usual methods by name, anything else as "OTHER". */
enum api_metrics_method {
    API_METRICS_METHOD_GET = 0,
    API_METRICS_METHOD_HEAD,
    API_METRICS_METHOD_POST,
    API_METRICS_METHOD_PUT,
    API_METRICS_METHOD_DELETE,
    API_METRICS_METHOD_PATCH,
    API_METRICS_METHOD_OPTIONS,
    API_METRICS_METHOD_OTHER,
};

#define API_METRICS_NMETHODS ((int)API_METRICS_METHOD_OTHER + 1)

/* The status label: the statuses the api answers, plus one slot rendered as "other". */
#define API_METRICS_NSTATUS 11

/* A histogram with the api's buckets, as plain counts (common/prom.h). */
struct api_metrics_hist {
    struct prom_hist h;
};

/* Database pool state, as the store reports it (store_ops.pool_stats). */
struct api_metrics_pool {
    bool known;                   /* false: no pool to report; its families are left out */
    int size;                     /* connections; idle = size - busy */
    int busy;                     /* checked out by a request */
    struct api_metrics_hist wait; /* every checkout's wait, 0 when a connection was free */
    uint64_t timeouts;            /* checkouts that gave up (the request got 503) */
};

/* Everything /metrics shows, as plain numbers. */
struct api_metrics_snapshot {
    uint64_t requests[ROUTER_ROUTE_COUNT][API_METRICS_NMETHODS][API_METRICS_NSTATUS];
    struct api_metrics_hist duration[ROUTER_ROUTE_COUNT];
    uint64_t orders_created;     /* 201 answers that wrote an order */
    uint64_t idempotent_replays; /* answers replayed from an Idempotency-Key */
    int64_t in_flight;           /* requests begun and not completed (the scrape included) */
    int64_t start_unix_us;       /* process start, Unix microseconds */
    struct api_metrics_pool pool;
    struct prom_process process;     /* process_*; the caller fills it (prom_process_read) */
    const struct version_libs *libs; /* orders_api_build_info; NULL: left out */
};

/* The live registry; opaque. */
struct api_metrics;

/* @returns new, all counters zero (free with api_metrics_free). */
struct api_metrics *api_metrics_new(int64_t start_unix_us);

/* NULL is a no-op. No thread may use m any more. */
void api_metrics_free(struct api_metrics *m);

/*
 * Counts one answered request and its duration. route is the endpoint the path
 * names (ROUTER_ROUTE_NONE for an unknown path); status the HTTP status sent.
 * Thread-safe and lock-free: three relaxed atomic adds.
 */
void api_metrics_request_done(struct api_metrics *m, enum router_route route,
                              enum api_metrics_method method, unsigned status, int64_t duration_us);

/* Counts a successful POST /orders: a new order, or a replay. Thread-safe (one atomic add). */
void api_metrics_order_answered(struct api_metrics *m, bool replayed);

/*
 * Copies the registry into *out (requests, durations, orders, start time) and
 * zeroes the rest (in_flight, pool, process, libs), which the caller fills.
 * process.start_time_s is set from the start time. Thread-safe; the
 * counters are read one by one, so a snapshot taken under load may count a
 * request in requests_total but not yet in the duration histogram.
 */
void api_metrics_read(const struct api_metrics *m, struct api_metrics_snapshot *out);

/* Classifies a request method (case-sensitive, as HTTP says). NULL is OTHER. */
enum api_metrics_method api_metrics_method(const char *method);

/* Adds one observation of us microseconds to h. Not thread-safe (callers lock). */
void api_metrics_hist_observe(struct api_metrics_hist *h, uint64_t us);

/*
 * Renders s in the Prometheus text exposition format 0.0.4: each family with
 * # HELP and # TYPE, histograms with cumulative _bucket{le=...}, _sum, _count,
 * then process_* and orders_api_build_info. Returns new (free()). Pure;
 * thread-safe.
 */
char *api_metrics_render(const struct api_metrics_snapshot *s);

#endif
