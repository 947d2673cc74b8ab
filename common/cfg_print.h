/*
 * What the binaries show of their options: --help's entries and
 * --print-config's settings with where each came from (secrets masked).
 */
#ifndef ORDERS_COMMON_CFG_PRINT_H
#define ORDERS_COMMON_CFG_PRINT_H

#include <stddef.h>
#include <stdio.h>

#include "cfg.h"

/*
 * --help body: one entry per row with its flag, help, variable and default.
 */
void cfg_usage(FILE *f, const struct cfg_opt *opts, size_t nopts);

/*
 * --print-config: every row that is not an action, as "name = value  [source]"
 * (source: default, file PATH:LINE, env NAME, flag --name; a value read from a
 * file adds "<- PATH"), then one line per -X/kafka. property. Secrets are masked: CFG_SECRET_DSN
 * values through log_redact_dsn, Kafka properties for which cfg_kafka_secret is true as "***".
 */
void cfg_print(FILE *f, const struct cfg_set *set);

#endif
