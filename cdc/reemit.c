/*
 * The re-emit request (JSON) and the query that serves it. Names in SQL are
 * always quoted identifiers (poll_sql_quote_ident), functions schema-
 * qualified; values travel as parameters.
 */
#include "reemit.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "poll_sql.h"
#include "xmem.h"

bool reemit_parse_ids(const char *text, struct reemit_request *req)
{
    const char *dots = strstr(text, "..");
    size_t first = dots != NULL ? (size_t)(dots - text) : strlen(text);
    const char *last = dots != NULL ? dots + 2 : text;

    if (first == 0 || first >= REEMIT_ID_MAX || *last == '\0' || strlen(last) >= REEMIT_ID_MAX)
        return false;
    memcpy(req->first_id, text, first);
    req->first_id[first] = '\0';
    snprintf(req->last_id, sizeof(req->last_id), "%s", last);
    req->kind = REEMIT_IDS;
    return true;
}

char *reemit_request_format(const struct reemit_request *req)
{
    json_t *o = json_object();
    char *text;

    json_object_set_new(o, "v", json_integer(1));
    json_object_set_new(o, "slot", json_string(req->slot));
    if (req->kind == REEMIT_IDS) {
        json_object_set_new(o, "first_id", json_string(req->first_id));
        json_object_set_new(o, "last_id", json_string(req->last_id));
    } else {
        json_object_set_new(o, "since_us", json_integer(req->since_us));
        json_object_set_new(o, "until_us", json_integer(req->until_us));
    }
    json_object_set_new(o, "snapshot", json_string(req->snapshot != NULL ? req->snapshot : ""));
    text = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(o);
    return text;
}

/* pg_snapshot's text output: xmin:xmax:xip,xip,... (xip may be empty). */
static bool snapshot_valid(const char *s)
{
    int colons = 0;

    if (*s < '0' || *s > '9')
        return false;
    for (const char *p = s; *p != '\0'; p++) {
        if (*p == ':') {
            if (++colons > 2 || p[1] == ':' || (colons == 1 && p[1] == '\0'))
                return false;
        } else if (*p == ',') {
            if (colons != 2 || p[-1] == ':' || p[1] < '0' || p[1] > '9')
                return false;
        } else if (*p < '0' || *p > '9') {
            return false;
        }
    }
    return colons == 2;
}

static bool copy_string(json_t *root, const char *key, char *buf, size_t buflen)
{
    json_t *v = json_object_get(root, key);

    if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) >= buflen ||
        strlen(json_string_value(v)) != json_string_length(v))
        return false;
    memcpy(buf, json_string_value(v), json_string_length(v) + 1);
    return true;
}

bool reemit_request_parse(const uint8_t *content, size_t len, struct reemit_request *req,
                          const char **why)
{
    json_t *root = json_loadb((const char *)content, len, JSON_REJECT_DUPLICATES, NULL);
    json_t *snap;
    bool ok = false;

    memset(req, 0, sizeof(*req));
    if (!json_is_object(root)) {
        *why = "not a JSON object";
        goto out;
    }
    if (!json_is_integer(json_object_get(root, "v")) ||
        json_integer_value(json_object_get(root, "v")) != 1) {
        *why = "not a version 1 request";
        goto out;
    }
    if (!copy_string(root, "slot", req->slot, sizeof(req->slot))) {
        *why = "no slot";
        goto out;
    }
    if (json_object_get(root, "first_id") != NULL) {
        req->kind = REEMIT_IDS;
        if (!copy_string(root, "first_id", req->first_id, sizeof(req->first_id)) ||
            !copy_string(root, "last_id", req->last_id, sizeof(req->last_id))) {
            *why = "bad id range";
            goto out;
        }
    } else {
        json_t *since = json_object_get(root, "since_us"),
               *until = json_object_get(root, "until_us");

        req->kind = REEMIT_TIME;
        if (!json_is_integer(since) || !json_is_integer(until) ||
            json_integer_value(until) <= json_integer_value(since)) {
            *why = "neither an id range nor a time range";
            goto out;
        }
        req->since_us = json_integer_value(since);
        req->until_us = json_integer_value(until);
    }
    snap = json_object_get(root, "snapshot");
    if (!json_is_string(snap) || !snapshot_valid(json_string_value(snap))) {
        *why = "no snapshot";
        goto out;
    }
    req->snapshot = xstrdup(json_string_value(snap));
    ok = true;
out:
    json_decref(root);
    return ok;
}

void reemit_request_free(struct reemit_request *req)
{
    if (req == NULL)
        return;
    free(req->snapshot);
    req->snapshot = NULL;
}

/* Appends to buf at *n; false when it does not fit. */
static bool append(char *buf, size_t buflen, size_t *n, const char *s)
{
    size_t len = strlen(s);

    if (*n + len + 1 > buflen)
        return false;
    memcpy(buf + *n, s, len + 1);
    *n += len;
    return true;
}

bool reemit_sql_select(const char *schema, const char *table, const struct outbox_layout *layout,
                       enum reemit_kind kind, bool commit_ts, char *buf, size_t buflen)
{
    const struct outbox_columns *cols = layout->cols;
    bool has_time = layout->timestamp >= 0 && (layout->timestamp_kind == OUTBOX_TS_TIME ||
                                               layout->timestamp_kind == OUTBOX_TS_EPOCH_MS);
    char s[256], t[256], ts[260], col[270], id[260], us[900], range[1400], tail[3600];
    size_t n = 0;

    if (!poll_sql_quote_ident(schema, s, sizeof(s)) || !poll_sql_quote_ident(table, t, sizeof(t)) ||
        !poll_sql_quote_ident(cols->role[OUTBOX_COL_ID], id, sizeof(id)))
        return false;
    /* The row time in Unix microseconds, as poll mode reads it: the commit
     * time where the server tracks it, else the column. */
    if (has_time && (!poll_sql_quote_ident(cols->timestamp, ts, sizeof(ts)) ||
                     snprintf(col, sizeof(col), "t.%s", ts) >= (int)sizeof(col) ||
                     !poll_sql_ts_us(col, layout->timestamp_kind, commit_ts, us, sizeof(us))))
        return false;
    if (!has_time)
        snprintf(us, sizeof(us), "NULL::pg_catalog.int8");
    if (kind == REEMIT_TIME) {
        if (!has_time)
            return false;
        /* The bounds are converted once, not the column per row, so an
         * index on the column serves the range (as the audit's scan). */
        if (layout->timestamp_kind == OUTBOX_TS_TIME)
            snprintf(range, sizeof(range),
                     "t.%s >= pg_catalog.to_timestamp($1::pg_catalog.float8 / 1000000) AND t.%s < "
                     "pg_catalog.to_timestamp($2::pg_catalog.float8 / 1000000)",
                     ts, ts);
        else
            snprintf(range, sizeof(range),
                     "t.%s >= pg_catalog.div($1::pg_catalog.int8, 1000) AND t.%s < "
                     "pg_catalog.div($2::pg_catalog.int8 + 999, 1000)",
                     ts, ts);
    } else {
        /* Untyped parameters take the id column's type: its order, its input. */
        snprintf(range, sizeof(range), "t.%s >= $1 AND t.%s <= $2", id, id);
    }
    if (buflen > 0)
        buf[0] = '\0';
    if (!append(buf, buflen, &n, "SELECT ") ||
        !poll_sql_event_columns(layout, "t.", us, buf, buflen, &n))
        return false;
    /*
     * Ordered by the row time (column 6, POLL_SQL_COL_TS_US + 1), then id.
     * Visible to the request's snapshot: pg_visible_in_snapshot takes a
     * 64-bit transaction id, and a row has only the 32 bits of xmin; the
     * epoch is the one that puts it at or before the next id now (right for
     * any row younger than 2^32 transactions; the frozen bootstrap id 2
     * maps to the oldest id of the epoch, visible to every snapshot).
     */
    if (snprintf(tail, sizeof(tail),
                 " FROM %s.%s AS t CROSS JOIN (SELECT pg_catalog.pg_snapshot_xmax("
                 "pg_catalog.pg_current_snapshot())::pg_catalog.text::pg_catalog.int8 AS nx) AS n"
                 " WHERE %s AND pg_catalog.pg_visible_in_snapshot(GREATEST(3, n.nx - "
                 "((n.nx %% 4294967296) - t.xmin::pg_catalog.text::pg_catalog.int8 + 4294967296) "
                 "%% 4294967296)::pg_catalog.text::pg_catalog.xid8, $3::pg_catalog.pg_snapshot)"
                 " ORDER BY %st.%s",
                 s, t, range, has_time ? "6, " : "", id) >= (int)sizeof(tail))
        return false;
    return append(buf, buflen, &n, tail);
}
