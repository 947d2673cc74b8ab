/*
 * The relay's checks beside the stream (cdc/relay_ops.h's watch): whether
 * the outbox table is still in the publication (docs/protocol.md#r10) and
 * the heartbeat (#p1), each on an ordinary connection of its own. Does not
 * log; outcomes come back with a message in the caller's buffer.
 */
#ifndef ORDERS_CDC_WATCH_H
#define ORDERS_CDC_WATCH_H

#include "relay_ops.h"
#include "repl.h"

struct watch;

/* Returns new (free with watch_free); opts borrowed for the watch's life.
 * Connects only when first needed. */
struct watch *watch_new(const struct repl_opts *opts);
void watch_free(struct watch *w); /* NULL-safe */

/* The struct relay_watch_ops of a struct watch. */
extern const struct relay_watch_ops watch_ops;

#endif
