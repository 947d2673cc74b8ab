/*
 * Rows of a re-emit request into events, batch by batch.
 */
#include "reemit_serve.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "poll_sql.h"
#include "reemit_pg.h"
#include "xmem.h"

#define PG_EPOCH_OFFSET_US INT64_C(946684800000000)

/* Fills ev from row of the cursor's batch (views into it, bytea decoded
 * into *scratch). OUTBOX_OK or why the row cannot be an event. */
static enum outbox_status row_event(const struct reemit_cursor *c, int row,
                                    const struct outbox_layout *layout,
                                    const struct outbox_columns *cols, struct outbox_event *ev,
                                    uint8_t **scratch, size_t *scratch_cap)
{
    struct pgout_str *dest[OUTBOX_NCOLS] = {&ev->id, &ev->aggregate_type, &ev->aggregate_id,
                                            &ev->event_type, &ev->payload};
    size_t len, need;

    memset(ev, 0, sizeof(*ev));
    for (int col = 0; col < OUTBOX_NCOLS; col++) {
        dest[col]->ptr = reemit_pg_value(c, row, col, &len);
        dest[col]->len = len;
        if (dest[col]->ptr == NULL && col != OUTBOX_COL_PAYLOAD)
            return OUTBOX_ENULL;
    }
    ev->traceparent.ptr = reemit_pg_value(c, row, POLL_SQL_COL_TRACEPARENT, &len);
    ev->traceparent.len = len;
    ev->nheaders = layout->nheaders;
    for (size_t h = 0; h < ev->nheaders; h++) {
        ev->headers[h].name = cols->headers[h].header;
        ev->headers[h].value.ptr = reemit_pg_value(c, row, POLL_SQL_COL_HEADERS + (int)h, &len);
        ev->headers[h].value.len = len;
    }
    need = outbox_event_decode_size(layout, ev);
    if (need > *scratch_cap) {
        *scratch = xrealloc(*scratch, need);
        *scratch_cap = need;
    }
    return outbox_event_decode(layout, ev, *scratch, *scratch_cap);
}

enum reemit_result reemit_serve(const struct reemit_source *src, const struct reemit_request *req,
                                const struct reemit_hooks *hooks, uint64_t *sent, uint64_t *skipped,
                                char *err, size_t errlen)
{
    struct outbox_layout layout;
    enum outbox_pg_status st;
    enum reemit_result result = REEMIT_DONE;
    struct reemit_cursor *c;
    uint8_t *scratch = NULL;
    size_t scratch_cap = 0;

    *sent = 0;
    *skipped = 0;
    c = reemit_pg_open(src->database_url, src->connect_timeout_s, src->table_schema,
                       src->table_name, src->columns, req, &layout, &st, err, errlen);
    if (c == NULL)
        return st == OUTBOX_PG_EFATAL ? REEMIT_EFATAL : REEMIT_ERETRY;
    for (;;) {
        bool stopped;
        int n;

        if (!hooks->idle(hooks->arg)) {
            result = REEMIT_STOPPED;
            break;
        }
        st =
            reemit_pg_fetch(c, src->batch_rows, hooks->idle, hooks->arg, &stopped, &n, err, errlen);
        if (stopped) {
            result = REEMIT_STOPPED;
            break;
        }
        if (st != OUTBOX_PG_OK) {
            result = st == OUTBOX_PG_EFATAL ? REEMIT_EFATAL : REEMIT_ERETRY;
            break;
        }
        if (n == 0)
            break;
        for (int i = 0; i < n; i++) {
            struct outbox_event ev;
            char ts[OUTBOX_TS_LEN + 1];
            size_t len;
            const char *ts_text = reemit_pg_value(c, i, POLL_SQL_COL_TS_US, &len);
            enum outbox_status ost =
                row_event(c, i, &layout, src->columns, &ev, &scratch, &scratch_cap);

            if (ost != OUTBOX_OK) {
                log_write_fields(
                    LOG_LEVEL_WARN,
                    (struct log_field[]){{"event_id", ev.id.ptr ? ev.id.ptr : "?", -1}}, 1,
                    "re-emit: skipping bad outbox row: %s", outbox_strerror(ost));
                (*skipped)++;
                continue;
            }
            if (ts_text != NULL)
                outbox_format_timestamp(strtoll(ts_text, NULL, 10) - PG_EPOCH_OFFSET_US, ts,
                                        sizeof(ts));
            if (!hooks->emit(hooks->arg, &ev, ts_text != NULL ? ts : NULL)) {
                result = REEMIT_STOPPED;
                goto out;
            }
            (*sent)++;
        }
    }
out:
    reemit_pg_close(c);
    free(scratch);
    return result;
}
