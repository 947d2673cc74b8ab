/*
 * Request classification for the HTTP layer: which endpoint a method and path
 * name, the Allow list for a 405, and whether a Content-Type is JSON.
 * Pure: no I/O, no allocation, no logging; thread-safe.
 */
#ifndef ORDERS_API_ROUTER_H
#define ORDERS_API_ROUTER_H

#include <stdbool.h>
#include <stddef.h>

enum router_route {
    ROUTER_ROUTE_NONE = 0,
    ROUTER_ROUTE_ORDER_CREATE, /* POST /orders */
    ROUTER_ROUTE_ORDER_GET,    /* GET /orders/{id} */
    ROUTER_ROUTE_HEALTHZ,      /* GET /healthz */
    ROUTER_ROUTE_READYZ,       /* GET /readyz */
    ROUTER_ROUTE_METRICS,      /* GET /metrics */
};

#define ROUTER_ROUTE_COUNT ((int)ROUTER_ROUTE_METRICS + 1)

enum router_status {
    ROUTER_OK = 0,
    ROUTER_ENOTFOUND, /* no endpoint has this path: 404 */
    ROUTER_EMETHOD,   /* the path exists, the method does not: 405 with match->allow */
    ROUTER_EBADID,    /* /orders/{id} with an id that is not a canonical uuid: 400 */
};

struct router_match {
    enum router_route route;    /* set on ROUTER_OK only */
    enum router_route endpoint; /* the endpoint the path names, whatever the method or id
                                   (NONE if not found); labels metrics of 400 and 405 answers */
    const char *allow; /* static Allow header value for the path; NULL if no path matched */
    const char *id;    /* ROUTER_ROUTE_ORDER_GET (and EBADID): view into path, not NUL-terminated */
    size_t id_len;
};

/*
 * Classifies method (e.g. "GET", case-sensitive as HTTP says) and path (the
 * URL path without query string). HEAD is accepted wherever GET is. The path
 * must match exactly: "/orders/" and "/orders/{id}/x" are not found, and
 * checks run in the order path, method, id. Fills *out on every return.
 * @returns ROUTER_OK or the error class.
 */
enum router_status router_match(const char *method, const char *path, struct router_match *out);

enum router_ctype {
    ROUTER_CTYPE_JSON = 0, /* application/json, optionally with parameters */
    ROUTER_CTYPE_MISSING,  /* no Content-Type header (value NULL or blank) */
    ROUTER_CTYPE_OTHER,    /* any other media type, or a charset other than utf-8 */
};

/*
 * Classifies a Content-Type header value: "application/json" (any case,
 * optional whitespace) followed by optional ";name=value" parameters. A charset
 * parameter, quoted or not, must be utf-8 (any case), since JSON is UTF-8.
 */
enum router_ctype router_content_type(const char *value);

#endif
