/*
 * The outbox convention (docs/architecture.md#fixed-interfaces) and its
 * column mapping (docs/relay.md#the-outbox-table-and-its-columns): which
 * columns of the outbox table make up an event, and how an event is routed
 * to a Kafka topic. Pure: works on views into the decoded pgoutput buffer
 * (or a query result), allocates nothing, never logs.
 */
#ifndef ORDERS_CDC_OUTBOX_H
#define ORDERS_CDC_OUTBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pgout.h"
#include "relcache.h"

/* The roles every event needs, in this order everywhere (poll mode's
 * SELECT list too). The names are the defaults of the mapping. */
enum outbox_col {
    OUTBOX_COL_ID,             /* "id": the id header */
    OUTBOX_COL_AGGREGATE_TYPE, /* "aggregate_type": the route (${aggregate_type}) and its header */
    OUTBOX_COL_AGGREGATE_ID,   /* "aggregate_id": the Kafka key */
    OUTBOX_COL_EVENT_TYPE,     /* "event_type": its header and ${event_type} */
    OUTBOX_COL_PAYLOAD,        /* "payload": the value; NULL makes a null value */
    OUTBOX_NCOLS
};

/* Extra columns sent as headers (--header-columns), at most this many. */
#define OUTBOX_MAX_HEADERS 16

/* PostgreSQL's type OIDs (pg_type.dat) the mapping cares about: a bytea
 * payload or header column is sent as its bytes, not as its text form; the
 * timestamp column is a timestamptz or timestamp, or a bigint of Unix
 * milliseconds (Debezium's example table). */
#define OUTBOX_BYTEA_OID       17
#define OUTBOX_INT8_OID        20
#define OUTBOX_TIMESTAMP_OID   1114
#define OUTBOX_TIMESTAMPTZ_OID 1184

enum outbox_ts_kind {
    OUTBOX_TS_NONE = 0, /* no such column */
    OUTBOX_TS_TIME,     /* timestamptz, or timestamp (read as UTC) */
    OUTBOX_TS_EPOCH_MS, /* bigint: milliseconds since 1970-01-01 UTC */
    OUTBOX_TS_OTHER,    /* a type the relay cannot read as a time */
};

/*
 * Which column plays which role: the relay's --*-column options. Names are
 * exact, case-sensitive column names (as in the Relation message and
 * pg_attribute); every string is borrowed for the life of the struct.
 * Stream mode reads the roles and the optional columns; poll mode and the
 * commands that query the table (audit) also the timestamp and published
 * columns.
 */
struct outbox_columns {
    const char *role[OUTBOX_NCOLS];
    const char *timestamp;     /* row time: poll order, poll commit_ts fallback, audit range */
    const char *published;     /* poll mode's "sent" mark */
    const char *traceparent;   /* W3C trace context column; NULL: none */
    bool traceparent_required; /* named explicitly: a table without it is an error */
    size_t nheaders;
    struct {
        const char *column;
        const char *header;
    } headers[OUTBOX_MAX_HEADERS];
};

/* The defaults: id, aggregate_type, aggregate_id, event_type, payload,
 * created_at, published_at, traceparent (optional), no extra headers. */
void outbox_columns_default(struct outbox_columns *c);

/* The default name of a role ("id", "aggregate_type", ...). */
const char *outbox_column_name(enum outbox_col col);

/*
 * Parses a --header-columns list, "col[=header],col2,..." (header defaults
 * to the column name), into c->headers, cutting text in place (the names
 * then point into it). Spaces around names are dropped. False with *why (a
 * static string) for an empty name, more than OUTBOX_MAX_HEADERS entries, a
 * header name used twice, or a header name the relay sets itself (id,
 * event_type, aggregate_type, lsn, commit_ts, traceparent, replayed, replay_request).
 */
bool outbox_header_columns_parse(char *text, struct outbox_columns *c, const char **why);

/* Positions of the mapped columns in the relation's tuples (-1: absent,
 * only for the optional ones). */
struct outbox_layout {
    uint32_t relid;
    int index[OUTBOX_NCOLS];
    bool bytea[OUTBOX_NCOLS];
    int traceparent;
    int timestamp; /* the timestamp column, -1 when absent (stream mode needs none) */
    enum outbox_ts_kind timestamp_kind;
    size_t nheaders;
    int header_index[OUTBOX_MAX_HEADERS];
    bool header_bytea[OUTBOX_MAX_HEADERS];
    const struct outbox_columns *cols; /* borrowed: header names */
};

/* One header from a column; value.ptr NULL for SQL NULL. */
struct outbox_header {
    const char *name;
    struct pgout_str value;
};

/* One event, as views into the decoded message (or a query result, or
 * the caller's scratch buffer for decoded bytea). */
struct outbox_event {
    struct pgout_str id;
    struct pgout_str aggregate_type;
    struct pgout_str aggregate_id;
    struct pgout_str event_type;
    struct pgout_str payload;     /* ptr NULL when the column is NULL */
    struct pgout_str traceparent; /* ptr NULL: no traceparent header */
    size_t nheaders;
    struct outbox_header headers[OUTBOX_MAX_HEADERS];
};

enum outbox_status {
    OUTBOX_OK = 0,
    OUTBOX_EMISSING_COLUMN, /* the relation lacks a required column */
    OUTBOX_ENULL,           /* the id, route, key or type column is NULL */
    OUTBOX_EBINARY,         /* a column arrived in binary or unchanged form */
    OUTBOX_ESHORT,          /* the tuple has fewer columns than the relation */
    OUTBOX_EBYTEA,          /* a bytea column's text is not bytea output */
};

const char *outbox_strerror(enum outbox_status status);

/*
 * Finds the mapped columns in rel (names and type OIDs). On
 * OUTBOX_EMISSING_COLUMN, *missing names the first absent column (borrowed
 * from cols). cols is kept in layout->cols (borrowed).
 */
enum outbox_status outbox_layout_init(struct outbox_layout *layout,
                                      const struct outbox_columns *cols,
                                      const struct relcache_rel *rel, const char **missing);

/*
 * Extracts the event from an Insert's new tuple: the text forms of its
 * columns, bytea ones still in their text form (outbox_event_decode turns
 * them into bytes). On an error the columns that could be read are still
 * filled (the others have ptr NULL).
 */
enum outbox_status outbox_event_from_tuple(const struct outbox_layout *layout,
                                           const struct pgout_tuple *tuple,
                                           struct outbox_event *ev);

/*
 * Bytes outbox_event_decode needs in its scratch buffer for ev: the text
 * length of every non-NULL bytea column of the layout (the bytes are never
 * longer than their text).
 */
size_t outbox_event_decode_size(const struct outbox_layout *layout, const struct outbox_event *ev);

/*
 * Turns the layout's bytea columns of ev (payload, header columns) from
 * bytea's text output (hex "\x..." or the escape format, whichever
 * bytea_output made) into their bytes, written to buf (at least
 * outbox_event_decode_size bytes), and points ev's views there. The
 * traceparent column is reduced to the traceparent itself
 * (outbox_traceparent_extract). OUTBOX_EBYTEA when a value is not bytea
 * output.
 */
enum outbox_status outbox_event_decode(const struct outbox_layout *layout, struct outbox_event *ev,
                                       uint8_t *buf, size_t buflen);

/*
 * Decodes bytea's text output (src, len) into out (room for len bytes).
 * Returns the number of bytes, or -1 when src is neither "\x" followed by
 * pairs of hex digits nor the escape format (printable bytes, "\\", and
 * "\ooo" octal). Pure.
 */
long outbox_bytea_decode(const char *src, size_t len, uint8_t *out);

/*
 * The traceparent in a trace context column: the value itself, or, when the
 * column holds a serialized java.util.Properties (Debezium's
 * tracingspancontext, written by OpenTelemetry's W3C propagator), the value
 * of its "traceparent" line. Surrounding blanks are dropped; an empty result
 * has ptr NULL (no header). Not validated: the column is copied as stored.
 */
struct pgout_str outbox_traceparent_extract(struct pgout_str col);

/*
 * Renders the topic from a template in which "${aggregate_type}" (or
 * Debezium's "${routedByValue}") and "${event_type}" are replaced by the
 * event's values. Writes a NUL-terminated name into buf. Returns false when
 * the result does not fit or is not a legal Kafka topic name (1..249 of
 * [a-zA-Z0-9._-], not "." or "..").
 */
bool outbox_topic(const char *tmpl, const struct outbox_event *ev, char *buf, size_t buflen);

/* True when tmpl uses ${event_type} (the type column is then needed to route). */
bool outbox_topic_uses_event_type(const char *tmpl);

/* True for a legal Kafka topic name. */
bool outbox_topic_valid(const char *name, size_t len);

/* Formats a pgoutput timestamp (microseconds since 2000-01-01 UTC) as
 * ISO 8601 UTC with microseconds: "2026-11-26T23:00:00.123456Z".
 * buf must hold at least OUTBOX_TS_LEN + 1 bytes. Returns the length. */
#define OUTBOX_TS_LEN 27
size_t outbox_format_timestamp(int64_t pg_us, char *buf, size_t buflen);

#endif
