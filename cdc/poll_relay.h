/*
 * --mode poll: the polling outbox relay (docs/relay.md, "Polling mode"), for
 * databases where logical replication is not allowed. Each batch is one
 * transaction: select unpublished rows FOR UPDATE SKIP LOCKED, produce them
 * with the same routing and headers as stream mode (no lsn header), wait for
 * every delivery report, mark them published, commit. Owns its database
 * connection and producer; logs what it decides.
 */
#ifndef ORDERS_CDC_POLL_RELAY_H
#define ORDERS_CDC_POLL_RELAY_H

#include "relay_config.h"

/* Runs until stopped (or, with cfg->until_empty, until a poll finds
 * nothing). Returns how it ended; every failure is already logged. */
enum relay_exit poll_relay_run(const struct relay_common_config *common,
                               const struct relay_poll_config *cfg);

#endif
