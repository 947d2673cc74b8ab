/*
 * What cdc/sink_kafka.c (the producer) shares with cdc/eos_kafka.c (its
 * transactions and the checkpoint topic): the librdkafka handle and the
 * helpers both need. Only those two files include it (tools/check_deps.sh).
 */
#ifndef ORDERS_CDC_SINK_KAFKA_INT_H
#define ORDERS_CDC_SINK_KAFKA_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "sink_kafka.h"

/* The opaque of checkpoint records (relay sequence numbers never get there):
 * their delivery reports never reach the sink_delivery_fn. */
#define SINK_SEQ_CHECKPOINT UINT64_MAX

rd_kafka_t *sink_kafka_handle(struct sink *s);

/* Empties the wake-up pipe (sink_wakeup_fd) after librdkafka served reports
 * outside sink_poll, e.g. in a transaction's commit or abort. */
void sink_kafka_drain_wakeup(struct sink *s);

/* The relay's defaults, then the brokers (unless NULL), then the user's -X
 * properties: later ones win, so -X can override any default. False with err
 * filled (a secret's value left out) when librdkafka refuses one. */
bool sink_kafka_set_props(rd_kafka_conf_t *conf, const struct sink_prop *defaults, size_t ndefaults,
                          const char *brokers, const struct sink_prop *props, size_t nprops,
                          char *err, size_t errlen);

/* librdkafka's log callback: its lines into ours (cdc's log). */
void sink_kafka_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf);

/* Errors a retry or a new producer cannot fix (docs/protocol.md#k2). */
bool sink_kafka_error_is_permanent(rd_kafka_resp_err_t err);

/* A newer producer with the same transactional.id took over. */
bool sink_kafka_error_is_fence(rd_kafka_resp_err_t err);

#endif
