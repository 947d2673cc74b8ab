/*
 * The outbox convention (docs/architecture.md#fixed-interfaces): which columns of the outbox
 * table make up an event, and how an event is routed to a Kafka topic. Pure:
 * works on views into the decoded pgoutput buffer, allocates nothing.
 */
#ifndef ORDERS_CDC_OUTBOX_H
#define ORDERS_CDC_OUTBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pgout.h"
#include "relcache.h"

enum outbox_col {
    OUTBOX_COL_ID,
    OUTBOX_COL_AGGREGATE_TYPE,
    OUTBOX_COL_AGGREGATE_ID,
    OUTBOX_COL_EVENT_TYPE,
    OUTBOX_COL_PAYLOAD,
    OUTBOX_NCOLS
};

/* Positions of the outbox columns in the relation's tuples. */
struct outbox_layout {
    uint32_t relid;
    int index[OUTBOX_NCOLS];
};

/* One event, as views into the decoded message. */
struct outbox_event {
    struct pgout_str id;
    struct pgout_str aggregate_type;
    struct pgout_str aggregate_id;
    struct pgout_str event_type;
    struct pgout_str payload; /* ptr NULL when the column is NULL */
};

enum outbox_status {
    OUTBOX_OK = 0,
    OUTBOX_EMISSING_COLUMN, /* the relation lacks a required column */
    OUTBOX_ENULL,           /* id, aggregate_type, aggregate_id or event_type is NULL */
    OUTBOX_EBINARY,         /* a column arrived in binary or unchanged form */
    OUTBOX_ESHORT,          /* the tuple has fewer columns than the relation */
};

const char *outbox_strerror(enum outbox_status status);

/* Column names, in enum order ("id", "aggregate_type", ...). */
const char *outbox_column_name(enum outbox_col col);

/* Finds the outbox columns in rel. On OUTBOX_EMISSING_COLUMN, *missing
 * names the first absent column (static string). */
enum outbox_status outbox_layout_init(struct outbox_layout *layout, const struct relcache_rel *rel,
                                      const char **missing);

/* Extracts the event from an Insert's new tuple. On an error the columns
 * that could be read are still filled (the others have ptr NULL). */
enum outbox_status outbox_event_from_tuple(const struct outbox_layout *layout,
                                           const struct pgout_tuple *tuple,
                                           struct outbox_event *ev);

/*
 * Renders the topic from a template in which "${aggregate_type}" and
 * "${event_type}" are replaced by the event's values. Writes a NUL-terminated
 * name into buf. Returns false when the result does not fit or is not a
 * legal Kafka topic name (1..249 of [a-zA-Z0-9._-], not "." or "..").
 */
bool outbox_topic(const char *tmpl, const struct outbox_event *ev, char *buf, size_t buflen);

/* True for a legal Kafka topic name. */
bool outbox_topic_valid(const char *name, size_t len);

/* Formats a pgoutput timestamp (microseconds since 2000-01-01 UTC) as
 * ISO 8601 UTC with microseconds: "2026-11-26T23:00:00.123456Z".
 * buf must hold at least OUTBOX_TS_LEN + 1 bytes. Returns the length. */
#define OUTBOX_TS_LEN 27
size_t outbox_format_timestamp(int64_t pg_us, char *buf, size_t buflen);

#endif
