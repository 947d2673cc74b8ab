/*
 * The orders HTTP server on libmicrohttpd: routes requests (router.c),
 * validates bodies (orders.c) and calls a struct store_ops, and serves its own
 * metrics at /metrics (api_metrics.c). The only file that includes the
 * libmicrohttpd header. Must never block on anything but the store.
 */
#ifndef ORDERS_API_HTTP_H
#define ORDERS_API_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "compiler.h"
#include "store.h"
#include "version.h"

#define HTTP_BODY_MAX       ((size_t)16 * 1024) /* bytes; larger bodies get 413 */
#define HTTP_CONN_TIMEOUT_S 30                  /* idle or slow clients are dropped */
#define HTTP_CONN_LIMIT     1024                /* concurrent connections, all threads */
/* A request (headers and body) must arrive within this many seconds of the
 * connection opening or the previous answer, however steadily it trickles
 * in: the idle timeout alone never ends a slowloris client. */
#define HTTP_REQUEST_DEADLINE_S 30
#define HTTP_ADDR_STR_MAX       64

struct http_server;

struct http_options {
    const struct sockaddr *addr; /* IPv4 or IPv6; port 0 picks a free port. Copied. */
    socklen_t addr_len;
    int threads;                     /* worker threads (MHD thread pool), >= 1 */
    const struct store_ops *ops;     /* borrowed until http_server_stop returns */
    void *store;                     /* passed to ops; borrowed likewise */
    int64_t start_unix_us;           /* process start (Unix µs) for /metrics; 0 means now */
    const struct version_libs *libs; /* orders_api_build_info; borrowed; NULL: none */
};

/*
 * Binds and starts serving on opt->threads internal threads.
 * @returns new (stop and free with http_server_stop), or NULL with errbuf
 * filled (libmicrohttpd's own reason, e.g. the bind error, is logged by it).
 */
struct http_server *http_server_start(const struct http_options *opt, char *errbuf,
                                      size_t errlen) MUSTCHECK;

/* Writes the bound address, "127.0.0.1:PORT" or "[::1]:PORT", with the real port. */
void http_server_addr(const struct http_server *srv, char *buf, size_t len);

/* Stops accepting connections; requests in progress go on. Call once. */
void http_server_quiesce(struct http_server *srv);

/*
 * Waits up to timeout_ms for every request in progress to finish.
 * @returns true if none is left. Call after http_server_quiesce.
 */
bool http_server_drain(struct http_server *srv, int timeout_ms);

/* Number of requests begun and not yet completed. Thread-safe. */
int http_server_inflight(struct http_server *srv);

/* Closes every connection, joins the threads and frees srv. NULL is a no-op. */
void http_server_stop(struct http_server *srv);

/* libmicrohttpd's run-time version ("0.9.75"), for --version and build_info. */
const char *http_mhd_version(void);

#endif
