/*
 * cdc-relay reemit (docs/operations.md#re-emitting-events): checks the
 * range against the table as the relay will read it, writes the request
 * into the WAL (cdc/reemit_pg.h) and prints its LSN; with --wait, polls the
 * slot until its relay has delivered past the request.
 */
#ifndef ORDERS_CDC_REEMIT_CMD_H
#define ORDERS_CDC_REEMIT_CMD_H

#include <stdbool.h>
#include <stdio.h>

#include "outbox.h"
#include "reemit.h"

/* Exit status of the command (besides 2, bad usage, from main). */
enum reemit_exit {
    REEMIT_EXIT_OK = 0,      /* written (and with --wait: delivered) */
    REEMIT_EXIT_ERROR = 1,   /* not written, or the wait failed (logged) */
    REEMIT_EXIT_TIMEOUT = 4, /* written, not delivered within --wait-timeout */
};

struct reemit_cmd_config {
    const char *database_url;
    const char *slot;
    const char *table_schema, *table_name;
    const struct outbox_columns *columns;
    int connect_timeout_s;
    struct reemit_request *req; /* kind and range; slot and snapshot filled here */
    bool wait;
    int wait_timeout_ms;
    FILE *out;
};

int reemit_cmd_run(const struct reemit_cmd_config *cfg);

#endif
