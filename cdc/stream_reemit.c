/*
 * A `cdc-relay reemit` request decoded at its place in the stream
 * (docs/operations.md#re-emitting-events): its rows are produced now, in the
 * request's transaction, before anything committed after it is read (per-key
 * order), and that transaction's position waits for every one of their
 * acknowledgements. The rows come from the re-emit server (cdc/relay_ops.h);
 * while it reads the table the loop keeps the stream answered.
 */
#include "stream.h"

#include <stdio.h>
#include <string.h>

#include "log.h"
#include "reemit.h"

struct reemit_ctx {
    struct stream *s;
    enum stream_end end;
    char request[LSN_STR_MAX];
};

static bool reemit_emit(void *arg, const struct outbox_event *ev, const char *commit_ts)
{
    struct reemit_ctx *x = arg;
    struct sink_meta meta = {
        .commit_ts = commit_ts != NULL ? commit_ts : x->s->txn_ts,
        .replay_request = x->request,
    };

    return stream_produce_event(x->s, ev, &meta, &x->end);
}

static bool reemit_idle(void *arg)
{
    struct reemit_ctx *x = arg;

    if (!stream_keep_alive(x->s, 0, &x->end))
        return false;
    return (x->end = stream_check_kafka(x->s)) == STREAM_STOP;
}

static void log_request(const struct stream *s, uint64_t lsn, const char *request,
                        const struct reemit_request *req)
{
    if (req->kind == REEMIT_IDS)
        log_event(LOG_LEVEL_INFO, lsn, NULL, -1, "re-emit request %s: ids %s..%s of %s.%s", request,
                  req->first_id, req->last_id, s->common->table_schema, s->common->table_name);
    else
        log_event(LOG_LEVEL_INFO, lsn, NULL, -1,
                  "re-emit request %s: rows of %s.%s from %lld to %lld (Unix us)", request,
                  s->common->table_schema, s->common->table_name, (long long)req->since_us,
                  (long long)req->until_us);
}

bool stream_handle_reemit(struct stream *s, enum stream_end *end)
{
    const struct pgout_msg *m = s->msg;
    uint64_t lsn = m->u.message.lsn;
    struct reemit_ctx x = {.s = s, .end = STREAM_STOP};
    struct reemit_hooks hooks = {.emit = reemit_emit, .idle = reemit_idle, .arg = &x};
    struct reemit_request req;
    const char *why = NULL;
    uint64_t sent = 0, skipped = 0;
    enum reemit_result res;
    int64_t t0;
    double secs;

    if (!(m->u.message.flags & 1) || s->skip_txn)
        return true; /* not from cdc-relay reemit, or served before this reconnect */
    if (!s->in_txn) {
        log_error("protocol error: transactional message outside a transaction");
        *end = STREAM_FATAL;
        return false;
    }
    if (!reemit_request_parse(m->u.message.content, m->u.message.len, &req, &why)) {
        log_event(LOG_LEVEL_WARN, lsn, NULL, -1, "ignoring a bad re-emit request: %s", why);
        return true;
    }
    lsn_format(lsn, x.request, sizeof(x.request));
    if (strcmp(req.slot, s->cfg->slot) != 0) {
        log_event(LOG_LEVEL_INFO, lsn, NULL, -1,
                  "re-emit request %s is for slot \"%s\", not this relay's", x.request, req.slot);
        reemit_request_free(&req);
        return true;
    }
    log_request(s, lsn, x.request, &req);
    if (s->reemit == NULL) {
        reemit_request_free(&req);
        log_error("re-emit request %s: this relay has no table reader to serve it; stopping "
                  "without confirming it",
                  x.request);
        *end = STREAM_FATAL;
        return false;
    }
    t0 = s->clock->mono_us();
    res = s->reemit_ops->serve(s->reemit, &req, &hooks, &sent, &skipped, s->err, sizeof(s->err));
    reemit_request_free(&req);
    secs = (double)(s->clock->mono_us() - t0) / 1e6;
    switch (res) {
    case REEMIT_DONE:
        log_event(LOG_LEVEL_INFO, lsn, NULL, -1,
                  "re-emit request %s: %llu events produced, %llu bad rows skipped, in %.1f s "
                  "(%.0f rows/s); confirmed once Kafka acknowledged them",
                  x.request, (unsigned long long)sent, (unsigned long long)skipped, secs,
                  secs > 0 ? (double)sent / secs : 0.0);
        return true;
    case REEMIT_STOPPED:
        log_event(LOG_LEVEL_WARN, lsn, NULL, -1,
                  "re-emit request %s interrupted after %llu events; it is served again from "
                  "its start when the stream comes back",
                  x.request, (unsigned long long)sent);
        *end = x.end;
        return false;
    case REEMIT_ERETRY:
        log_warn("re-emit request %s: %s; reconnecting, it is served again", x.request, s->err);
        *end = STREAM_RETRY;
        return false;
    case REEMIT_EFATAL:
        break;
    }
    log_error("re-emit request %s: %s; stopping without confirming it", x.request, s->err);
    *end = STREAM_FATAL;
    return false;
}
