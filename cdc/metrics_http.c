/*
 * libmicrohttpd with MHD_USE_INTERNAL_POLLING_THREAD: one thread, GET and
 * HEAD only, no request bodies kept, no per-request state. Reads a copy of
 * the snapshot the relay loop published; never touches the loop's data.
 */
#include "metrics_http.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "compiler.h"
#include "log.h"
#include "netaddr.h"
#include "xmem.h"

#define METRICS_CONN_LIMIT     32
#define METRICS_CONN_TIMEOUT_S 10
#define METRICS_BACKLOG        32

struct metrics_http {
    struct MHD_Daemon *d;
    struct metrics_board *board;
    const struct version_libs *libs;
    int64_t start_us;
    struct sockaddr_storage addr; /* as bound: the real port */
};

static int64_t clock_us(clockid_t id)
{
    struct timespec ts;

    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Takes ownership of body (malloc'd). */
static enum MHD_Result respond(struct MHD_Connection *c, unsigned status, const char *type,
                               char *body)
{
    struct MHD_Response *resp;
    enum MHD_Result ret;

    resp = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
    if (resp == NULL) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    ret = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result respond_json(struct MHD_Connection *c, unsigned status, const char *fmt, ...)
    PRINTF_FMT(3, 4);

static enum MHD_Result respond_json(struct MHD_Connection *c, unsigned status, const char *fmt, ...)
{
    char buf[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    return respond(c, status, "application/json", xstrdup(buf));
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls)
{
    static int first_call_seen;
    struct metrics_http *h = cls;
    struct metrics_snapshot snap;

    UNUSED(version);
    UNUSED(upload_data);
    /* First call: headers only; answer on the next one, once any body
     * (which nothing here wants) has been read and dropped. */
    if (*req_cls == NULL) {
        *req_cls = &first_call_seen;
        return MHD_YES;
    }
    if (*upload_data_size != 0) {
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
        return respond_json(c, MHD_HTTP_METHOD_NOT_ALLOWED, "{\"error\":\"method not allowed\"}");
    if (strcmp(url, "/metrics") == 0) {
        struct prom_process proc;

        metrics_board_read(h->board, &snap);
        prom_process_read(&proc, h->start_us);
        return respond(c, MHD_HTTP_OK, PROM_CONTENT_TYPE,
                       metrics_render(&snap, &proc, h->libs, clock_us(CLOCK_REALTIME),
                                      clock_us(CLOCK_MONOTONIC)));
    }
    if (strcmp(url, "/healthz") == 0)
        return respond_json(c, MHD_HTTP_OK, "{\"status\":\"ok\"}");
    if (strcmp(url, "/readyz") == 0) {
        char reason[128];

        metrics_board_read(h->board, &snap);
        /* reason is one of metrics_ready's fixed texts: nothing to escape */
        if (metrics_ready(&snap, clock_us(CLOCK_MONOTONIC), reason, sizeof(reason)))
            return respond_json(c, MHD_HTTP_OK, "{\"status\":\"ready\"}");
        return respond_json(c, MHD_HTTP_SERVICE_UNAVAILABLE,
                            "{\"status\":\"not ready\",\"reason\":\"%s\"}", reason);
    }
    return respond_json(c, MHD_HTTP_NOT_FOUND, "{\"error\":\"not found\"}");
}

static void mhd_log(void *cls, const char *fmt, va_list ap) PRINTF_FMT(2, 0);

/* libmicrohttpd's own messages (bind errors, dropped connections) into our log. */
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    UNUSED(cls);
    log_library_message("metrics http server", fmt, ap);
}

/* "HOST:PORT" or "[V6]:PORT" into a socket address (numeric or resolvable host). */
static int parse_listen(const char *spec, struct sockaddr_storage *ss, char *err, size_t errlen)
{
    char host[256];
    const char *hstart = spec;
    const char *colon = strrchr(spec, ':');
    const char *port;
    size_t hlen;
    struct addrinfo hints, *res = NULL;
    int rc;

    if (colon == NULL || colon[1] == '\0') {
        snprintf(err, errlen, "--metrics-listen '%s' is not HOST:PORT", spec);
        return -1;
    }
    port = colon + 1;
    hlen = (size_t)(colon - spec);
    if (hlen >= 2 && spec[0] == '[' && spec[hlen - 1] == ']') {
        hstart++;
        hlen -= 2;
    }
    if (hlen == 0 || hlen >= sizeof(host)) {
        snprintf(err, errlen, "--metrics-listen '%s' is not HOST:PORT", spec);
        return -1;
    }
    memcpy(host, hstart, hlen);
    host[hlen] = '\0';
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "--metrics-listen '%s': %s", spec, gai_strerror(rc));
        return -1;
    }
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    return 0;
}

/* Binds and listens here rather than in MHD, so that a failure says why in
 * words an operator can act on (MHD only logs "Failed to bind"). */
static int listen_on(const char *spec, struct sockaddr_storage *ss, char *err, size_t errlen)
{
    socklen_t len =
        ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    int one = 1;
    int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0) {
        snprintf(err, errlen, "--metrics-listen %s: socket: %s", spec, strerror(errno));
        return -1;
    }
    /* A restart must not wait for the old process's TIME_WAIT connections. */
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)ss, len) != 0 || listen(fd, METRICS_BACKLOG) != 0) {
        int saved = errno;

        close(fd);
        if (saved == EADDRINUSE)
            snprintf(err, errlen,
                     "--metrics-listen %s: the port is already in use (another cdc-relay, or "
                     "another program); give this relay a free one with --metrics-listen HOST:PORT "
                     "(CDC_METRICS_LISTEN), or no listener with --metrics-listen none",
                     spec);
        else if (saved == EADDRNOTAVAIL)
            snprintf(err, errlen, "--metrics-listen %s: this host has no such address", spec);
        else if (saved == EACCES)
            snprintf(err, errlen,
                     "--metrics-listen %s: permission denied (ports below 1024 need privileges)",
                     spec);
        else
            snprintf(err, errlen, "--metrics-listen %s: %s", spec, strerror(saved));
        return -1;
    }
    len = sizeof(*ss);
    getsockname(fd, (struct sockaddr *)ss, &len);
    return fd;
}

struct metrics_http *metrics_http_start(const char *spec, struct metrics_board *board,
                                        const struct version_libs *libs, int64_t start_us,
                                        char *err, size_t errlen)
{
    struct metrics_http *h = xcalloc(1, sizeof(*h));
    unsigned flags =
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ITC | MHD_USE_ERROR_LOG;
    int fd;

    h->board = board;
    h->libs = libs;
    h->start_us = start_us;
    if (parse_listen(spec, &h->addr, err, errlen) != 0 ||
        (fd = listen_on(spec, &h->addr, err, errlen)) < 0) {
        free(h);
        return NULL;
    }
    if (h->addr.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    h->d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, h,
                            /* First, so that no message goes to MHD's own stderr logger. */
                            MHD_OPTION_EXTERNAL_LOGGER, mhd_log, h, MHD_OPTION_LISTEN_SOCKET,
                            (MHD_socket)fd, MHD_OPTION_CONNECTION_LIMIT,
                            (unsigned int)METRICS_CONN_LIMIT, MHD_OPTION_CONNECTION_TIMEOUT,
                            (unsigned int)METRICS_CONN_TIMEOUT_S, MHD_OPTION_END);
    if (h->d == NULL) {
        /* fd is left alone: whether MHD closed it on its way out is not said */
        snprintf(err, errlen, "cannot serve metrics on %s (reason logged above)", spec);
        free(h);
        return NULL;
    }
    return h;
}

void metrics_http_addr(const struct metrics_http *h, char *buf, size_t len)
{
    unsigned port = h->addr.ss_family == AF_INET6
                        ? ntohs(((const struct sockaddr_in6 *)&h->addr)->sin6_port)
                        : ntohs(((const struct sockaddr_in *)&h->addr)->sin_port);

    netaddr_format(&h->addr, port, buf, len);
}

const char *metrics_http_mhd_version(void)
{
    return MHD_get_version();
}

void metrics_http_stop(struct metrics_http *h)
{
    if (h == NULL)
        return;
    MHD_stop_daemon(h->d);
    free(h);
}
