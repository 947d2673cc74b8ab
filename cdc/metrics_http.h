/*
 * The relay's HTTP endpoint (--metrics-listen, on by default on loopback):
 * GET /metrics (Prometheus text), /healthz (the process answers) and /readyz
 * (metrics_ready), served by libmicrohttpd on one internal thread that only
 * reads the metrics board. The only relay file that includes microhttpd.h.
 */
#ifndef ORDERS_CDC_METRICS_HTTP_H
#define ORDERS_CDC_METRICS_HTTP_H

#include <stddef.h>

#include "metrics.h"
#include "version.h"

struct metrics_http;

/*
 * Starts listening on spec ("HOST:PORT", "[V6ADDR]:PORT"; port 0 picks a
 * free one). board and libs are borrowed until metrics_http_stop; start_us
 * (Unix µs) is the process start when /proc cannot say. Returns new, or
 * NULL with err filled: a port in use, an address this host does not have
 * or a privileged port each get their own message naming what to do. Call
 * with SIGINT/SIGTERM blocked so the server thread never takes them.
 */
struct metrics_http *metrics_http_start(const char *spec, struct metrics_board *board,
                                        const struct version_libs *libs, int64_t start_us,
                                        char *err, size_t errlen);

/* libmicrohttpd's run-time version ("0.9.75"), for --version and build_info. */
const char *metrics_http_mhd_version(void);

/* The bound address as "HOST:PORT" ("[V6]:PORT"), port resolved. */
void metrics_http_addr(const struct metrics_http *h, char *buf, size_t len);

/* Stops the server thread and frees h. NULL-safe. */
void metrics_http_stop(struct metrics_http *h);

#endif
