/*
 * The relay in stream mode: reads the slot, turns outbox inserts into Kafka
 * messages, and confirms to Postgres only what Kafka acknowledged
 * (docs/protocol.md#the-relays-rules). Owns the replication connection, the
 * producer and the watermark (the loop itself is cdc/stream.c); logs what it
 * decides.
 */
#ifndef ORDERS_CDC_RELAY_H
#define ORDERS_CDC_RELAY_H

#include "relay_config.h"

/* Runs until stopped; returns how it ended. Logs every decision. */
enum relay_exit relay_run(const struct relay_common_config *common,
                          const struct relay_stream_config *cfg);

#endif
