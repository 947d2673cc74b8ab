/*
 * cdc-relay audit (docs/operations.md#auditing-a-time-range): compares the
 * outbox rows of a time range with the id headers of the messages in their
 * topics and reports the rows whose event is missing and the messages no row
 * explains. The comparison (struct audit_book) is pure and unit-tested; the
 * rows come from cdc/outbox_pg.c, the messages from cdc/kafka_scan.c.
 */
#ifndef ORDERS_CDC_AUDIT_H
#define ORDERS_CDC_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "outbox.h"
#include "sink_kafka.h"

/* Exit status of the command (besides 2, bad usage, from main). */
enum audit_exit {
    AUDIT_EXIT_OK = 0,         /* every row's event found, nothing unexpected */
    AUDIT_EXIT_ERROR = 1,      /* could not audit (logged) */
    AUDIT_EXIT_MISSING = 4,    /* at least one row's event is missing */
    AUDIT_EXIT_UNEXPECTED = 5, /* none missing, but messages no row explains */
};

struct audit_config {
    const char *database_url;
    const char *brokers;
    const struct sink_prop *kafka_props; /* the user's librdkafka properties */
    size_t nkafka_props;
    const char *table_schema;
    const char *table_name;
    const struct outbox_columns *columns;
    const char *topic_template;
    const char *topics;            /* comma-separated; NULL: the rows' own (template) */
    const char *dead_letter_topic; /* also read, for events sent there; NULL: none */
    int64_t since_us, until_us;    /* [since, until), Unix microseconds */
    int64_t clock_skew_ms;         /* read each topic from since minus this */
    int connect_timeout_s;
    FILE *out; /* the report */
};

/* Runs the audit, writes the report to cfg->out, logs progress and errors;
 * returns an enum audit_exit. */
int audit_run(const struct audit_config *cfg);

/*
 * A --since/--until value: "now"; a duration meaning that long before now
 * ("2h", "10m", "1d"); a date "2026-12-05" (midnight UTC); or an ISO 8601
 * time "2026-12-05T10:00:00", with an optional fraction of a second (at most
 * 6 digits), and "Z" or "+HH:MM"/"-HH:MM" (none: UTC); a space may stand for
 * the "T". Pure; false for anything else.
 */
bool audit_parse_time(const char *text, int64_t now_us, int64_t *out_us);

/* ---- the comparison ---------------------------------------------------- */

struct audit_book;

/* @returns new, empty (free with audit_book_free). Aborts on OOM. */
struct audit_book *audit_book_new(void);
void audit_book_free(struct audit_book *b); /* NULL-safe */

/* The index of topic name (added on first use; the name is copied). */
size_t audit_book_topic(struct audit_book *b, const char *name, size_t len);
const char *audit_book_topic_name(const struct audit_book *b, size_t topic);
size_t audit_book_ntopics(const struct audit_book *b);

/* An outbox row of the range: its id and the topic its event belongs to. */
void audit_book_add_row(struct audit_book *b, const char *id, size_t len, size_t topic);

/* A message read: its id header (NULL: none), topic, position, and its
 * commit_ts header as Unix microseconds (INT64_MIN: none; for a message
 * without an id, its record timestamp). dead_letter: read from the
 * dead-letter topic (counts for the row of its id, whatever its topic). */
void audit_book_add_msg(struct audit_book *b, const char *id, size_t len, size_t topic,
                        int64_t commit_us, int32_t partition, int64_t offset, bool dead_letter);

enum audit_finding {
    AUDIT_MISSING,       /* a row whose event is on none of its topics */
    AUDIT_DEAD_LETTERED, /* a row whose event is only on the dead-letter topic */
    AUDIT_WRONG_TOPIC,   /* a message with a row's id on another topic than the row's */
    AUDIT_NO_ID,         /* a message without an id header */
    AUDIT_NO_ROW,        /* a message of the range whose id no row of the range has:
                          * unexpected unless the table has that id elsewhere */
};

/* One finding; id and topic borrowed for the call (topic NULL for a row of
 * any topic). partition/offset -1 for rows. */
typedef void (*audit_finding_fn)(void *arg, enum audit_finding f, const char *id, size_t len,
                                 const char *topic, int32_t partition, int64_t offset);

struct audit_counts {
    uint64_t rows, messages, found, missing, dead_lettered, duplicates, wrong_topic, no_id, no_row,
        outside; /* outside: messages of other ranges, not reported */
};

/*
 * Compares (sorts the book). A row is found when a message with its id is on
 * its topic (any_topic: on any topic read); extra copies count as
 * duplicates. A message whose id no row has is reported AUDIT_NO_ROW, one
 * without an id AUDIT_NO_ID, when its time is in [since_us, until_us) (or
 * unknown), else counted as outside. Calls fn for each finding.
 */
void audit_book_compare(struct audit_book *b, int64_t since_us, int64_t until_us, bool any_topic,
                        audit_finding_fn fn, void *arg, struct audit_counts *counts);

/* Parses a commit_ts header ("2026-11-26T23:00:00.123456Z") into Unix
 * microseconds; false when it is not that form. Pure. */
bool audit_parse_commit_ts(const char *s, size_t len, int64_t *out_us);

#endif
