/*
 * The outbox without a table: an event carried by a transactional logical
 * decoding message (pg_logical_emit_message(true, 'outbox', content)), whose
 * content is a JSON object with the outbox columns:
 *   {"id": "...", "aggregate_type": "...", "aggregate_id": "...",
 *    "event_type": "...", "payload": <any JSON>, "traceparent": "..."}
 * (traceparent optional, a string or null).
 * Pure: parses a buffer, no I/O. The only cdc module using jansson.
 */
#ifndef ORDERS_CDC_OUTBOX_MESSAGE_H
#define ORDERS_CDC_OUTBOX_MESSAGE_H

#include <stddef.h>
#include <stdint.h>

#include "outbox.h"

struct outbox_message {
    struct outbox_event ev; /* views into this struct's own allocations */
    void *root;             /* the parsed document (json_t) */
    char *payload_text;     /* payload re-serialized, NULL for JSON null */
};

/*
 * Parses content into *out. On success returns true and *out must be freed
 * with outbox_message_free; on failure returns false with *why pointing at a
 * static description and nothing to free. The payload is written back with
 * jansson's default separators and the original key order, which is the
 * text form jsonb gives the same object in table mode.
 */
bool outbox_message_parse(const uint8_t *content, size_t len, struct outbox_message *out,
                          const char **why);

void outbox_message_free(struct outbox_message *m); /* NULL-safe */

#endif
