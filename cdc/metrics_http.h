/*
 * The relay's HTTP endpoint (--metrics-listen): GET /metrics (Prometheus
 * text), /healthz (the process answers) and /readyz (metrics_ready), served
 * by libmicrohttpd on one internal thread that only reads the metrics board.
 * The only relay file that includes microhttpd.h.
 */
#ifndef ORDERS_CDC_METRICS_HTTP_H
#define ORDERS_CDC_METRICS_HTTP_H

#include <stddef.h>

#include "metrics.h"

struct metrics_http;

/*
 * Starts listening on spec ("HOST:PORT", "[V6ADDR]:PORT"; port 0 picks a
 * free one). board is borrowed until metrics_http_stop. Returns new, or NULL
 * with err filled (MHD's own messages are logged as they come). Call with
 * SIGINT/SIGTERM blocked so the server thread never takes them.
 */
struct metrics_http *metrics_http_start(const char *spec, struct metrics_board *board, char *err,
                                        size_t errlen);

/* The bound address as "HOST:PORT" ("[V6]:PORT"), port resolved. */
void metrics_http_addr(const struct metrics_http *h, char *buf, size_t len);

/* Stops the server thread and frees h. NULL-safe. */
void metrics_http_stop(struct metrics_http *h);

#endif
