/*
 * HTTP request lifecycle on libmicrohttpd (see http.h). Per-request state lives
 * in *req_cls from the first access-handler call until NOTIFY_COMPLETED frees
 * it. Bodies are capped at HTTP_BODY_MAX and never buffered past it. This file
 * decides what to log about a request; the modules under it only report.
 */
#include "http.h"

#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <microhttpd.h>

#include "log.h"
#include "netaddr.h"
#include "api_metrics.h"
#include "idem.h"
#include "orders.h"
#include "router.h"
#include "traceparent.h"
#include "xmem.h"

#define PATH_LOG_MAX         96 /* bytes of the request path kept for the access log */
#define IDEM_HEADER          "Idempotency-Key"
#define IDEM_REPLAYED_HEADER "Idempotent-Replayed"
#define TRACEPARENT_HEADER   "traceparent"

/* One open connection, for the request deadline (HTTP_REQUEST_DEADLINE_S).
 * Lives in MHD's socket context from NOTIFY_STARTED to NOTIFY_CLOSED, which
 * MHD calls before it closes the socket: while an entry is listed under
 * conns_lock, its fd is this connection's. */
struct http_conn {
    struct http_conn *prev, *next;
    MHD_socket fd;
    int64_t since_us; /* monotonic start of the request being received */
    bool receiving;   /* false while the request is handled and answered */
};

struct http_server {
    struct MHD_Daemon *d;
    const struct store_ops *ops;
    void *store;
    struct sockaddr_storage addr;
    MHD_socket listen_fd; /* returned by MHD_quiesce_daemon; ours to close */
    atomic_int inflight;
    struct api_metrics *metrics;
    const struct version_libs *libs;
    /* request deadline: open connections, and the thread that ends late ones */
    pthread_mutex_t conns_lock;
    pthread_cond_t sweeper_wake;
    struct http_conn *conns;
    bool sweeper_running;
    bool stopping; /* under conns_lock */
    pthread_t sweeper;
};

struct http_request {
    enum router_route route;
    enum router_route endpoint; /* what the path names, also on 400/405: the route label */
    enum api_metrics_method method_label;
    bool answered;              /* a response was queued: counted in the metrics when completed */
    char id[ORDERS_ID_LEN + 1]; /* ROUTER_ROUTE_ORDER_GET */
    int64_t start_us;
    unsigned status;   /* answer decided early (e.g. 415), sent once the body is read;
                          then the status actually queued */
    const char *error; /* message for a decided error answer (static) */
    const char *allow; /* Allow header for a decided 405 */
    char *body;        /* POST /orders body so far, at most HTTP_BODY_MAX bytes */
    size_t body_len;
    size_t discarded; /* body bytes read and dropped because the answer is decided */
    char method[8];   /* for the access log */
    char path[PATH_LOG_MAX];
    bool has_idem_key; /* POST /orders came with a valid Idempotency-Key */
    char idem_key[IDEM_KEY_MAX + 1];
    /* POST /orders: the request's trace context, or a new one; "" if none
     * could be made (no randomness) */
    char traceparent[TRACEPARENT_LEN + 1];
};

static int64_t now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t unix_now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Copies at most len - 1 bytes of s, replacing anything but printable ASCII and '"'. */
static void copy_printable(char *dst, size_t len, const char *s)
{
    size_t i = 0;

    for (; s != NULL && s[i] != '\0' && i + 1 < len; i++) {
        unsigned char ch = (unsigned char)s[i];

        if (ch < 0x20 || ch > 0x7e || ch == '"')
            dst[i] = '?';
        else
            dst[i] = s[i];
    }
    if (len > 0)
        dst[i] = '\0';
}

/* Extra response headers; NULL members are left out. */
struct resp_headers {
    const char *allow;
    const char *location;
    const char *replayed;    /* Idempotent-Replayed */
    const char *traceparent; /* the trace context stored with the event */
};

/*
 * Queues a response of type ctype. body is malloc'd and owned by MHD afterwards;
 * NULL means an empty body. hdrs (NULL for none) adds Allow, Location,
 * Idempotent-Replayed, traceparent.
 */
static enum MHD_Result send_body(struct MHD_Connection *c, struct http_request *r, unsigned status,
                                 const char *ctype, char *body, const struct resp_headers *hdrs)
{
    struct MHD_Response *resp;
    enum MHD_Result ret;

    resp = MHD_create_response_from_buffer(body != NULL ? strlen(body) : 0, body,
                                           MHD_RESPMEM_MUST_FREE);
    if (resp == NULL) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    if (hdrs != NULL && hdrs->allow != NULL)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, hdrs->allow);
    if (hdrs != NULL && hdrs->location != NULL)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, hdrs->location);
    if (hdrs != NULL && hdrs->replayed != NULL)
        MHD_add_response_header(resp, IDEM_REPLAYED_HEADER, hdrs->replayed);
    if (hdrs != NULL && hdrs->traceparent != NULL)
        MHD_add_response_header(resp, TRACEPARENT_HEADER, hdrs->traceparent);
    ret = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);
    r->status = status;
    r->answered = ret == MHD_YES;
    return ret;
}

static enum MHD_Result send_json(struct MHD_Connection *c, struct http_request *r, unsigned status,
                                 char *body, const struct resp_headers *hdrs)
{
    return send_body(c, r, status, "application/json", body, hdrs);
}

/* {"error": msg}; msg must be UTF-8 (every caller passes ASCII). */
static enum MHD_Result send_error(struct MHD_Connection *c, struct http_request *r, unsigned status,
                                  const char *msg, const char *allow)
{
    json_t *obj = json_pack("{s:s}", "error", msg);
    char *body = obj != NULL ? json_dumps(obj, JSON_COMPACT) : NULL;

    json_decref(obj);

    struct resp_headers hdrs = {.allow = allow};

    if (body == NULL)
        body = xstrdup("{\"error\":\"internal error\"}");
    return send_json(c, r, status, body, &hdrs);
}

static enum MHD_Result send_decided(struct MHD_Connection *c, struct http_request *r)
{
    return send_error(c, r, r->status, r->error, r->allow);
}

/* Maps a failed store call to the client answer and logs the server-side reason
 * once; what is the log message ("get order failed"). */
static enum MHD_Result send_store_failure(struct MHD_Connection *c, struct http_request *r,
                                          enum store_status s, const char *what, const char *err)
{
    if (s == STORE_UNAVAILABLE) {
        log_fields(LOG_LEVEL_WARN, what, LOG_INT("status", 503), LOG_STR("error", err));
        return send_error(c, r, MHD_HTTP_SERVICE_UNAVAILABLE, "database unavailable", NULL);
    }
    log_fields(LOG_LEVEL_ERROR, what, LOG_INT("status", 500), LOG_STR("error", err));
    return send_error(c, r, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal error", NULL);
}

static enum MHD_Result handle_get_order(struct http_server *srv, struct MHD_Connection *c,
                                        struct http_request *r)
{
    char err[STORE_ERR_MAX];
    struct store_order order;
    enum store_status s;

    s = srv->ops->order_get(srv->store, r->id, &order, err, sizeof(err));
    if (s == STORE_OK)
        return send_json(c, r, MHD_HTTP_OK, order.json, NULL);
    if (s == STORE_NOT_FOUND)
        return send_error(c, r, MHD_HTTP_NOT_FOUND, "order not found", NULL);
    return send_store_failure(c, r, s, "get order failed", err);
}

static enum MHD_Result handle_create(struct http_server *srv, struct MHD_Connection *c,
                                     struct http_request *r)
{
    char verr[ORDERS_ERR_MAX], err[STORE_ERR_MAX], hash[IDEM_HASH_HEX_LEN + 1];
    struct order_request req;
    struct store_idempotency idem = {.key = r->idem_key, .request_hash = hash};
    struct store_created created;
    struct resp_headers hdrs = {0};
    enum store_status s;
    enum MHD_Result ret;

    if (orders_parse_request(r->body, r->body_len, &req, verr, sizeof(verr)) != ORDERS_OK)
        return send_error(c, r, MHD_HTTP_BAD_REQUEST, verr, NULL);
    if (r->has_idem_key)
        idem_request_hash(&req, hash);
    req.traceparent = r->traceparent[0] != '\0' ? r->traceparent : NULL;
    s = srv->ops->order_create(srv->store, &req, r->has_idem_key ? &idem : NULL, &created, err,
                               sizeof(err));
    if (s == STORE_KEY_MISMATCH)
        return send_error(c, r, MHD_HTTP_UNPROCESSABLE_CONTENT,
                          "Idempotency-Key reused with a different request", NULL);
    if (s != STORE_OK)
        return send_store_failure(c, r, s, "create order failed", err);
    api_metrics_order_answered(srv->metrics, created.replayed);
    hdrs.location = created.location;
    hdrs.replayed = created.replayed ? "true" : NULL;
    /* The stored trace context, so a client that sent none can follow the
     * event; a replay stored nothing, so it gets none. */
    hdrs.traceparent = created.replayed ? NULL : req.traceparent;
    /* MHD copies header values when they are added; the body it frees itself. */
    ret = send_json(c, r, (unsigned)created.http_status, created.body, &hdrs);
    free(created.location);
    return ret;
}

struct header_count {
    const char *name;
    int n;
};

static enum MHD_Result count_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                    const char *value)
{
    struct header_count *hc = cls;

    UNUSED(kind);
    UNUSED(value);
    if (key != NULL && strcasecmp(key, hc->name) == 0)
        hc->n++;
    return MHD_YES;
}

/*
 * Reads the Idempotency-Key header of a POST /orders into r, or decides a 400
 * if it is present but unusable: repeated, empty, too long or not printable ASCII.
 */
static void read_idem_key(struct MHD_Connection *c, struct http_request *r)
{
    struct header_count hc = {IDEM_HEADER, 0};
    const char *key = NULL;
    size_t len = 0;

    MHD_get_connection_values(c, MHD_HEADER_KIND, count_header, &hc);
    if (hc.n == 0)
        return;
    if (hc.n == 1 &&
        MHD_lookup_connection_value_n(c, MHD_HEADER_KIND, IDEM_HEADER, sizeof(IDEM_HEADER) - 1,
                                      &key, &len) == MHD_YES &&
        idem_key_valid(key, len)) {
        memcpy(r->idem_key, key, len);
        r->idem_key[len] = '\0';
        r->has_idem_key = true;
        return;
    }
    r->status = MHD_HTTP_BAD_REQUEST;
    r->error = hc.n > 1 ? "Idempotency-Key must be sent once"
                        : "Idempotency-Key must be 1 to 255 printable ASCII characters";
}

/*
 * POST /orders: the request's W3C traceparent when it is one (sent once and
 * valid), else a new trace. An unusable header is replaced, not refused: a
 * tracing header never fails an order, and the spec has a participant that
 * cannot parse it restart the trace (W3C Trace Context, "traceparent
 * Header"). Without randomness from the OS the event gets no trace context.
 */
static void read_traceparent(struct MHD_Connection *c, struct http_request *r)
{
    struct header_count hc = {TRACEPARENT_HEADER, 0};
    const char *value = NULL;
    size_t len = 0;

    MHD_get_connection_values(c, MHD_HEADER_KIND, count_header, &hc);
    if (hc.n == 1 &&
        MHD_lookup_connection_value_n(c, MHD_HEADER_KIND, TRACEPARENT_HEADER,
                                      sizeof(TRACEPARENT_HEADER) - 1, &value, &len) == MHD_YES &&
        traceparent_parse(value, len, r->traceparent))
        return;
    if (hc.n > 0 && log_threshold >= LOG_LEVEL_DEBUG)
        log_fields(LOG_LEVEL_DEBUG, "traceparent header unusable, starting a new trace",
                   LOG_INT("headers", hc.n));
    if (!traceparent_new(r->traceparent)) {
        r->traceparent[0] = '\0';
        log_fields(LOG_LEVEL_WARN, "no randomness for a new traceparent; event stored without one",
                   LOG_STR("error", strerror(errno)));
    }
}

/* True if the request announces a body (Content-Length > 0 or chunked). */
static bool has_body(struct MHD_Connection *c, unsigned long long *declared)
{
    const char *cl =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);

    *declared = 0;
    if (cl != NULL) {
        /* MHD already rejected a malformed Content-Length with 400. */
        *declared = strtoull(cl, NULL, 10);
        return *declared > 0;
    }
    return MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING) !=
           NULL;
}

/*
 * First call for a request: headers are in, no body yet. Decides every answer
 * that needs no body (404, 405, 400 bad id, 415) and answers 413 at once when
 * Content-Length is over the cap (MHD then shuts the read side and never reads
 * the body). Everything else is answered on the final call, once MHD has read
 * the (possibly empty) body: answering earlier makes MHD close the connection,
 * and closing a socket with unread input resets it, which can destroy the
 * answer before the client reads it.
 */
static enum MHD_Result on_headers(struct MHD_Connection *c, struct http_request *r,
                                  const char *method, const char *url)
{
    struct router_match m;
    enum router_status rs = router_match(method, url, &m);
    unsigned long long declared;

    r->route = m.route;
    r->endpoint = m.endpoint;
    if (m.id != NULL && rs == ROUTER_OK)
        memcpy(r->id, m.id, ORDERS_ID_LEN);
    switch (rs) {
    case ROUTER_ENOTFOUND:
        r->status = MHD_HTTP_NOT_FOUND;
        r->error = "not found";
        break;
    case ROUTER_EMETHOD:
        r->status = MHD_HTTP_METHOD_NOT_ALLOWED;
        r->error = "method not allowed";
        r->allow = m.allow;
        break;
    case ROUTER_EBADID:
        r->status = MHD_HTTP_BAD_REQUEST;
        r->error = "invalid order id: expected a uuid like 123e4567-e89b-12d3-a456-426614174000";
        break;
    case ROUTER_OK:
        break;
    }
    if (rs == ROUTER_OK && m.route == ROUTER_ROUTE_ORDER_CREATE) {
        const char *ct =
            MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);

        if (router_content_type(ct) != ROUTER_CTYPE_JSON) {
            r->status = MHD_HTTP_UNSUPPORTED_MEDIA_TYPE;
            r->error = "Content-Type must be application/json";
        } else {
            read_idem_key(c, r);
            read_traceparent(c, r);
        }
    }
    if (has_body(c, &declared) && declared > HTTP_BODY_MAX)
        return send_error(c, r, MHD_HTTP_CONTENT_TOO_LARGE, "request body exceeds 16384 bytes",
                          NULL);
    return MHD_YES;
}

/*
 * GET /metrics: a snapshot of the counters, the in-flight gauge and the pool,
 * in the Prometheus text format. Touches no database connection.
 */
static enum MHD_Result handle_metrics(struct http_server *srv, struct MHD_Connection *c,
                                      struct http_request *r)
{
    struct api_metrics_snapshot *snap = xmalloc(sizeof(*snap));
    char *text;

    api_metrics_read(srv->metrics, snap);
    snap->in_flight = atomic_load(&srv->inflight);
    if (srv->ops->pool_stats != NULL)
        srv->ops->pool_stats(srv->store, &snap->pool);
    prom_process_read(&snap->process, snap->start_unix_us);
    snap->libs = srv->libs;
    text = api_metrics_render(snap);
    free(snap);
    return send_body(c, r, MHD_HTTP_OK, API_METRICS_CONTENT_TYPE, text, NULL);
}

/* Final call: the body (if any) has been read. Answers the request. */
static enum MHD_Result on_complete_request(struct http_server *srv, struct MHD_Connection *c,
                                           struct http_request *r)
{
    char err[STORE_ERR_MAX];
    enum store_status s;

    if (r->status != 0)
        return send_decided(c, r);
    switch (r->route) {
    case ROUTER_ROUTE_ORDER_CREATE:
        return handle_create(srv, c, r);
    case ROUTER_ROUTE_ORDER_GET:
        return handle_get_order(srv, c, r);
    case ROUTER_ROUTE_HEALTHZ:
        return send_json(c, r, MHD_HTTP_OK, xstrdup("{\"status\":\"ok\"}"), NULL);
    case ROUTER_ROUTE_READYZ:
        s = srv->ops->ping(srv->store, err, sizeof(err));
        if (s == STORE_OK)
            return send_json(c, r, MHD_HTTP_OK, xstrdup("{\"status\":\"ready\"}"), NULL);
        log_fields(LOG_LEVEL_WARN, "readiness check failed", LOG_STR("error", err));
        return send_error(c, r, MHD_HTTP_SERVICE_UNAVAILABLE, "database unavailable", NULL);
    case ROUTER_ROUTE_METRICS:
        return handle_metrics(srv, c, r);
    case ROUTER_ROUTE_NONE:
        break;
    }
    return send_error(c, r, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal error", NULL);
}

/*
 * A chunk of body. Appends it for POST /orders; drops it when the answer is
 * already decided or the endpoint takes no body.
 */
static enum MHD_Result on_body(struct http_request *r, const char *data, size_t len)
{
    bool keep = r->status == 0 && r->route == ROUTER_ROUTE_ORDER_CREATE;
    size_t have = keep ? r->body_len : r->discarded;

    if (len > HTTP_BODY_MAX - have) {
        /*
         * Only reachable without a Content-Length (chunked): MHD cannot queue an
         * answer in the middle of a body, so drop the connection rather than
         * read on.
         */
        log_fields(LOG_LEVEL_INFO, "request body over limit, closing connection",
                   LOG_INT("limit", HTTP_BODY_MAX));
        r->status = MHD_HTTP_CONTENT_TOO_LARGE;
        return MHD_NO;
    }
    if (!keep) {
        r->discarded += len;
        return MHD_YES;
    }
    r->body = xrealloc(r->body, r->body_len + len);
    memcpy(r->body + r->body_len, data, len);
    r->body_len += len;
    return MHD_YES;
}

static void conn_receiving(struct http_server *srv, struct MHD_Connection *c, bool receiving);

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls)
{
    struct http_server *srv = cls;
    struct http_request *r = *req_cls;
    enum MHD_Result ret;

    UNUSED(version);
    if (r == NULL) {
        r = xcalloc(1, sizeof(*r));
        r->start_us = now_us();
        r->method_label = api_metrics_method(method);
        if (log_threshold >= LOG_LEVEL_DEBUG) {
            copy_printable(r->method, sizeof(r->method), method);
            copy_printable(r->path, sizeof(r->path), url);
        }
        *req_cls = r;
        atomic_fetch_add(&srv->inflight, 1);
        return on_headers(c, r, method, url);
    }
    if (*upload_data_size > 0) {
        ret = on_body(r, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return ret;
    }
    conn_receiving(srv, c, false);
    return on_complete_request(srv, c, r);
}

/* Marks the connection's request as fully received (false) or a new one
 * starting (true, from now). */
static void conn_receiving(struct http_server *srv, struct MHD_Connection *c, bool receiving)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    struct http_conn *hc = info != NULL ? info->socket_context : NULL;

    if (hc == NULL)
        return;
    pthread_mutex_lock(&srv->conns_lock);
    hc->receiving = receiving;
    if (receiving)
        hc->since_us = now_us();
    pthread_mutex_unlock(&srv->conns_lock);
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    struct http_server *srv = cls;
    struct http_conn *hc = *socket_context;

    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *info =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);

        if (info == NULL)
            return;
        hc = xcalloc(1, sizeof(*hc));
        hc->fd = info->connect_fd;
        hc->since_us = now_us();
        hc->receiving = true;
        pthread_mutex_lock(&srv->conns_lock);
        hc->next = srv->conns;
        if (srv->conns != NULL)
            srv->conns->prev = hc;
        srv->conns = hc;
        pthread_mutex_unlock(&srv->conns_lock);
        *socket_context = hc;
        return;
    }
    if (hc == NULL)
        return;
    pthread_mutex_lock(&srv->conns_lock);
    if (hc->prev != NULL)
        hc->prev->next = hc->next;
    else
        srv->conns = hc->next;
    if (hc->next != NULL)
        hc->next->prev = hc->prev;
    pthread_mutex_unlock(&srv->conns_lock);
    free(hc);
    *socket_context = NULL;
}

/*
 * Once a second, shuts down the socket of every connection whose request has
 * been arriving for longer than HTTP_REQUEST_DEADLINE_S; MHD then sees the
 * end of the stream and closes it itself (this thread never closes an fd).
 */
static void *sweeper_main(void *arg)
{
    struct http_server *srv = arg;

    pthread_mutex_lock(&srv->conns_lock);
    while (!srv->stopping) {
        struct timespec until;
        int64_t limit;
        int closed = 0;

        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += 1;
        pthread_cond_timedwait(&srv->sweeper_wake, &srv->conns_lock, &until);
        limit = now_us() - (int64_t)HTTP_REQUEST_DEADLINE_S * 1000000;
        for (struct http_conn *hc = srv->conns; hc != NULL; hc = hc->next) {
            if (hc->receiving && hc->since_us < limit) {
                shutdown(hc->fd, SHUT_RDWR);
                hc->receiving = false; /* once */
                closed++;
            }
        }
        if (closed > 0) {
            pthread_mutex_unlock(&srv->conns_lock);
            log_fields(LOG_LEVEL_INFO,
                       "request not received within the deadline, connections closed",
                       LOG_INT("count", closed), LOG_INT("deadline_s", HTTP_REQUEST_DEADLINE_S));
            pthread_mutex_lock(&srv->conns_lock);
        }
    }
    pthread_mutex_unlock(&srv->conns_lock);
    return NULL;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct http_server *srv = cls;
    struct http_request *r = *req_cls;
    int64_t duration_us;

    if (r == NULL)
        return;
    conn_receiving(srv, c, true); /* a keep-alive connection's next request */
    duration_us = now_us() - r->start_us;
    /* A request dropped before an answer was queued has no status to count. */
    if (r->answered)
        api_metrics_request_done(srv->metrics, r->endpoint, r->method_label, r->status,
                                 duration_us);
    if (log_threshold >= LOG_LEVEL_DEBUG)
        log_fields(LOG_LEVEL_DEBUG, "request", LOG_STR("method", r->method),
                   LOG_STR("path", r->path), LOG_INT("status", r->status),
                   LOG_INT("duration_us", duration_us), LOG_INT("termination", toe));
    free(r->body);
    free(r);
    *req_cls = NULL;
    atomic_fetch_sub(&srv->inflight, 1);
}

static void mhd_log(void *cls, const char *fmt, va_list ap) PRINTF_FMT(2, 0);

/* libmicrohttpd's own messages (bind errors, dropped connections) into our log. */
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    UNUSED(cls);
    log_library_message("http server", fmt, ap);
}

struct http_server *http_server_start(const struct http_options *opt, char *errbuf, size_t errlen)
{
    struct http_server *srv = xcalloc(1, sizeof(*srv));
    unsigned flags =
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ITC | MHD_USE_ERROR_LOG;

    if (opt->addr_len > sizeof(srv->addr)) {
        snprintf(errbuf, errlen, "listen address too long");
        free(srv);
        return NULL;
    }
    memcpy(&srv->addr, opt->addr, opt->addr_len);
    srv->ops = opt->ops;
    srv->libs = opt->libs;
    srv->store = opt->store;
    srv->listen_fd = MHD_INVALID_SOCKET;
    atomic_init(&srv->inflight, 0);
    srv->metrics = api_metrics_new(opt->start_unix_us != 0 ? opt->start_unix_us : unix_now_us());
    if (opt->addr->sa_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    pthread_mutex_init(&srv->conns_lock, NULL);
    pthread_cond_init(&srv->sweeper_wake, NULL);
    srv->d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, srv,
                              /* First, so that no message goes to MHD's own stderr logger. */
                              MHD_OPTION_EXTERNAL_LOGGER, mhd_log, srv, MHD_OPTION_SOCK_ADDR,
                              opt->addr, MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)opt->threads,
                              MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)HTTP_CONN_TIMEOUT_S,
                              MHD_OPTION_CONNECTION_LIMIT, (unsigned int)HTTP_CONN_LIMIT,
                              MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
                              MHD_OPTION_NOTIFY_CONNECTION, on_connection, srv, MHD_OPTION_END);
    if (srv->d == NULL) {
        snprintf(errbuf, errlen, "cannot start the HTTP server (reason logged above)");
        goto fail;
    }
    if (pthread_create(&srv->sweeper, NULL, sweeper_main, srv) != 0) {
        snprintf(errbuf, errlen, "cannot start the request deadline thread");
        MHD_stop_daemon(srv->d);
        goto fail;
    }
    srv->sweeper_running = true;
    return srv;
fail:
    pthread_cond_destroy(&srv->sweeper_wake);
    pthread_mutex_destroy(&srv->conns_lock);
    api_metrics_free(srv->metrics);
    free(srv);
    return NULL;
}

void http_server_addr(const struct http_server *srv, char *buf, size_t len)
{
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(srv->d, MHD_DAEMON_INFO_BIND_PORT);

    netaddr_format(&srv->addr, info != NULL ? info->port : 0, buf, len);
}

void http_server_quiesce(struct http_server *srv)
{
    srv->listen_fd = MHD_quiesce_daemon(srv->d);
}

int http_server_inflight(struct http_server *srv)
{
    return atomic_load(&srv->inflight);
}

bool http_server_drain(struct http_server *srv, int timeout_ms)
{
    int64_t deadline = now_us() + (int64_t)timeout_ms * 1000;
    struct timespec tick = {0, 10 * 1000000L};

    while (atomic_load(&srv->inflight) > 0) {
        if (now_us() >= deadline)
            return false;
        nanosleep(&tick, NULL);
    }
    return true;
}

void http_server_stop(struct http_server *srv)
{
    if (srv == NULL)
        return;
    if (srv->sweeper_running) {
        pthread_mutex_lock(&srv->conns_lock);
        srv->stopping = true;
        pthread_cond_signal(&srv->sweeper_wake);
        pthread_mutex_unlock(&srv->conns_lock);
        pthread_join(srv->sweeper, NULL);
    }
    /* MHD's NOTIFY_CLOSED callbacks still take conns_lock while it stops. */
    MHD_stop_daemon(srv->d);
    if (srv->listen_fd != MHD_INVALID_SOCKET)
        close(srv->listen_fd);
    pthread_cond_destroy(&srv->sweeper_wake);
    pthread_mutex_destroy(&srv->conns_lock);
    api_metrics_free(srv->metrics);
    free(srv);
}

const char *http_mhd_version(void)
{
    return MHD_get_version();
}
