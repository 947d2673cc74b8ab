/*
 * librdkafka producer for outbox events, after librdkafka's
 * examples/idempotent_producer.c: idempotence on, delivery reports drive the
 * relay's watermark, a fatal error makes the producer unusable. Never logs
 * an event failure itself; the relay decides and logs.
 */
#include "sink_kafka.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <librdkafka/rdkafka.h>

#include "cfg.h"
#include "log.h"
#include "sink_kafka_int.h"
#include "sink_ops.h"

struct sink {
    rd_kafka_t *rk;
    rd_kafka_queue_t *mainq;
    int wake[2];
    sink_delivery_fn on_delivery;
    void *arg;
    struct sink_stats stats; /* written by the callbacks, which sink_poll runs */
    /* --dead-letter-topic; copies the full queue refused from inside the
     * delivery callback wait here, oldest first, until sink_poll. */
    const char *dl_topic;
    sink_dead_letter_fn on_dead_letter;
    struct dl_pending *pending, *pending_tail;
    int npending;
};

struct dl_pending {
    struct dl_pending *next;
    uint64_t seq;
    void *key, *value; /* owned copies; NULL when absent */
    size_t key_len, value_len;
    rd_kafka_headers_t *hdrs; /* owned until produced */
    char event_id[128], lsn[32];
};

/* Errors a retry or a new producer cannot fix: the message as it is will
 * never be accepted (docs/protocol.md#k2). */
bool sink_kafka_error_is_permanent(rd_kafka_resp_err_t err)
{
    switch (err) {
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_INVALID_MSG_SIZE:
    case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
    case RD_KAFKA_RESP_ERR_INVALID_RECORD:
    case RD_KAFKA_RESP_ERR_POLICY_VIOLATION:
    case RD_KAFKA_RESP_ERR__INVALID_ARG:
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC: /* auto-creation off and nobody created it */
    /* In a delivery report (not a produce response, which librdkafka retries
     * forever here): the topic stayed unknown for topic.metadata.propagation.max.ms
     * (30 s), i.e. it does not exist and the broker does not create it.
     * Retrying it rewound the relay every few seconds forever. */
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
        return true;
    default:
        return false;
    }
}

/* Copies a header's value into buf as a C string ("?" when absent). */
static const char *header_value(const rd_kafka_message_t *rkm, const char *name, char *buf,
                                size_t buflen)
{
    rd_kafka_headers_t *hdrs = NULL;
    const void *val;
    size_t len;

    if (rd_kafka_message_headers(rkm, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR ||
        rd_kafka_header_get_last(hdrs, name, &val, &len) != RD_KAFKA_RESP_ERR_NO_ERROR ||
        val == NULL)
        return "?";
    if (len >= buflen)
        len = buflen - 1;
    memcpy(buf, val, len);
    buf[len] = '\0';
    return buf;
}

/* The broker or the client refused the record for its size: a copy
 * without the value can still go through. */
static bool error_is_size(rd_kafka_resp_err_t err)
{
    return err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE ||
           err == RD_KAFKA_RESP_ERR_INVALID_MSG_SIZE ||
           err == RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE;
}

static bool is_dead_letter_copy(const rd_kafka_message_t *rkm)
{
    rd_kafka_headers_t *hdrs = NULL;
    const void *val;
    size_t len;

    return rd_kafka_message_headers(rkm, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR &&
           rd_kafka_header_get_last(hdrs, SINK_DL_ERROR_HDR, &val, &len) ==
               RD_KAFKA_RESP_ERR_NO_ERROR;
}

static void pending_free(struct dl_pending *p)
{
    if (p->hdrs != NULL)
        rd_kafka_headers_destroy(p->hdrs);
    free(p->key);
    free(p->value);
    free(p);
}

/* Hands queued dead-letter copies to librdkafka, oldest first, until the
 * queue is full again. A copy refused for good is reported as a permanent
 * failure of its event. */
static void send_pending(struct sink *s)
{
    while (s->pending != NULL) {
        struct dl_pending *p = s->pending;
        rd_kafka_resp_err_t rerr = rd_kafka_producev(
            s->rk, RD_KAFKA_V_TOPIC(s->dl_topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_KEY(p->key, p->key_len), RD_KAFKA_V_VALUE(p->value, p->value_len),
            RD_KAFKA_V_HEADERS(p->hdrs), RD_KAFKA_V_OPAQUE((void *)(uintptr_t)p->seq),
            RD_KAFKA_V_END);

        if (rerr == RD_KAFKA_RESP_ERR__QUEUE_FULL && rd_kafka_outq_len(s->rk) > 0)
            return;
        s->pending = p->next;
        if (s->pending == NULL)
            s->pending_tail = NULL;
        s->npending--;
        if (rerr == RD_KAFKA_RESP_ERR_NO_ERROR) {
            p->hdrs = NULL; /* owned by the message now */
        } else if (s->on_delivery != NULL) {
            char err[512];
            snprintf(err, sizeof(err), "dead-letter copy to topic %s cannot be produced: %s",
                     s->dl_topic, rd_kafka_err2str(rerr));
            s->on_delivery(s->arg, p->seq, err, true, p->event_id, p->lsn);
        }
        pending_free(p);
    }
}

/* Queues a copy of a permanently failed message for the dead-letter topic:
 * its key and headers, its value unless the error was its size, and the
 * dl_* headers. */
static void redirect(struct sink *s, const rd_kafka_message_t *rkm, uint64_t seq, const char *err)
{
    struct dl_pending *p = calloc(1, sizeof(*p));
    rd_kafka_headers_t *orig = NULL;
    bool drop = error_is_size(rkm->err);
    const char *topic = rkm->rkt ? rd_kafka_topic_name(rkm->rkt) : "";
    char tmp[128];

    if (p == NULL) {
        s->on_delivery(s->arg, seq, "out of memory for a dead-letter copy", true, "?", "?");
        return;
    }
    p->seq = seq;
    snprintf(p->event_id, sizeof(p->event_id), "%s", header_value(rkm, "id", tmp, sizeof(tmp)));
    snprintf(p->lsn, sizeof(p->lsn), "%s", header_value(rkm, "lsn", tmp, sizeof(tmp)));
    if (rkm->key != NULL && (p->key = malloc(rkm->key_len + 1)) != NULL) {
        memcpy(p->key, rkm->key, rkm->key_len);
        p->key_len = rkm->key_len;
    }
    if (!drop && rkm->payload != NULL && (p->value = malloc(rkm->len + 1)) != NULL) {
        memcpy(p->value, rkm->payload, rkm->len);
        p->value_len = rkm->len;
    }
    p->hdrs = rd_kafka_message_headers(rkm, &orig) == RD_KAFKA_RESP_ERR_NO_ERROR
                  ? rd_kafka_headers_copy(orig)
                  : rd_kafka_headers_new(8);
    rd_kafka_header_add(p->hdrs, SINK_DL_TOPIC_HDR, -1, topic, -1);
    rd_kafka_header_add(p->hdrs, SINK_DL_ERROR_HDR, -1, err, -1);
    rd_kafka_header_add(p->hdrs, SINK_DL_ID_HDR, -1, p->event_id, -1);
    rd_kafka_header_add(p->hdrs, SINK_DL_LSN_HDR, -1, p->lsn, -1);
    if (drop)
        rd_kafka_header_add(p->hdrs, SINK_DL_DROPPED_HDR, -1, "true", -1);
    if (s->on_dead_letter != NULL)
        s->on_dead_letter(s->arg, seq, err, p->event_id, p->lsn);
    if (s->pending_tail != NULL)
        s->pending_tail->next = p;
    else
        s->pending = p;
    s->pending_tail = p;
    s->npending++;
    /* Producing from the delivery callback is allowed; a full queue leaves
     * the copy for the next sink_poll. */
    send_pending(s);
}

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *rkm, void *opaque)
{
    struct sink *s = opaque;
    uint64_t seq = (uint64_t)(uintptr_t)rkm->_private;
    char err[768], idbuf[128], lsnbuf[32];

    (void)rk;
    /* A checkpoint record's failure aborts the transaction it is in; the
     * relay learns it from the commit. */
    if (s->on_delivery == NULL || seq == SINK_SEQ_CHECKPOINT)
        return;
    if (rkm->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        s->stats.all_brokers_down = false;
        if (s->on_dead_letter != NULL && is_dead_letter_copy(rkm))
            s->on_dead_letter(s->arg, seq, NULL, header_value(rkm, "id", idbuf, sizeof(idbuf)),
                              header_value(rkm, "lsn", lsnbuf, sizeof(lsnbuf)));
        s->on_delivery(s->arg, seq, NULL, false, NULL, NULL);
        return;
    }
    snprintf(err, sizeof(err), "%s: topic=%s partition=%d", rd_kafka_err2str(rkm->err),
             rkm->rkt ? rd_kafka_topic_name(rkm->rkt) : "?", (int)rkm->partition);
    if (s->dl_topic != NULL && sink_kafka_error_is_permanent(rkm->err) &&
        !is_dead_letter_copy(rkm)) {
        redirect(s, rkm, seq, err);
        return;
    }
    s->on_delivery(s->arg, seq, err, sink_kafka_error_is_permanent(rkm->err),
                   header_value(rkm, "id", idbuf, sizeof(idbuf)),
                   header_value(rkm, "lsn", lsnbuf, sizeof(lsnbuf)));
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    struct sink *s = opaque;

    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN)
        s->stats.all_brokers_down = true;
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        char fatal[512];
        rd_kafka_fatal_error(rk, fatal, sizeof(fatal));
        log_error("kafka fatal error: %s", fatal);
        return;
    }
    /* Broker-down and transport errors are retried by librdkafka; they are
     * worth a line but not an action. */
    log_warn("kafka: %s: %s", rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
}

/* librdkafka's own log (from its threads) into ours; JSON lines also get
 * the facility as a field to filter on (text has it in the message). */
void sink_kafka_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    struct log_field fields[] = {{"component", "kafka", -1}, {"facility", fac, -1}};
    enum log_level lv;

    (void)rk;
    /* syslog levels: 0-3 error, 4 warning, 5-6 info, 7 debug */
    if (level <= 3)
        lv = LOG_LEVEL_ERROR;
    else if (level == 4)
        lv = LOG_LEVEL_WARN;
    else if (level <= 6)
        lv = LOG_LEVEL_INFO;
    else
        lv = LOG_LEVEL_DEBUG;
    log_write_fields(lv, fields, log_output == LOG_FORMAT_JSON ? 2 : 0, "kafka %s: %s", fac, buf);
}

static bool json_str_eq(json_t *obj, const char *key, const char *want)
{
    const char *v = json_string_value(json_object_get(obj, key));

    return v != NULL && strcmp(v, want) == 0;
}

bool sink_stats_parse(const char *json, size_t len, const struct sink_stats *prev,
                      struct sink_stats *out)
{
    struct sink_stats st;
    json_t *root = json_loadb(json, len, 0, NULL);
    json_t *brokers, *b;
    const char *key;

    brokers = json_object_get(root, "brokers"); /* borrowed; NULL-safe */
    if (!json_is_object(brokers)) {
        json_decref(root);
        return false;
    }
    memset(&st, 0, sizeof(st));
    st.known = true;
    json_object_foreach(brokers, key, b)
    {
        struct sink_broker_stats *bs;
        json_t *rtt = json_object_get(b, "rtt");
        const char *name = json_string_value(json_object_get(b, "name"));

        /* The internal broker is always "UP" and logical ones
         * (coordinators) alias real ones: neither says anything. */
        if (!json_is_object(b) || json_str_eq(b, "source", "internal") ||
            json_str_eq(b, "source", "logical") || st.nbrokers == SINK_MAX_BROKERS)
            continue;
        bs = &st.brokers[st.nbrokers++];
        snprintf(bs->name, sizeof(bs->name), "%s", name != NULL ? name : key);
        bs->up = json_str_eq(b, "state", "UP");
        if (bs->up)
            st.brokers_up++;
        bs->rtt_us = -1;
        if (json_integer_value(json_object_get(rtt, "cnt")) > 0) {
            bs->rtt_us = json_integer_value(json_object_get(rtt, "avg"));
        } else if (prev != NULL) {
            for (int i = 0; i < prev->nbrokers; i++)
                if (strcmp(prev->brokers[i].name, bs->name) == 0)
                    bs->rtt_us = prev->brokers[i].rtt_us;
        }
    }
    json_decref(root);
    st.all_brokers_down = prev != NULL && prev->all_brokers_down && st.brokers_up == 0;
    *out = st;
    return true;
}

/* Runs in sink_poll. librdkafka frees json when this returns 0. */
static int stats_cb(rd_kafka_t *rk, char *json, size_t json_len, void *opaque)
{
    struct sink *s = opaque;

    (void)rk;
    if (!sink_stats_parse(json, json_len, &s->stats, &s->stats))
        log_debug("kafka statistics not understood; broker metrics unchanged");
    return 0;
}

bool sink_prop_is_secret(const char *name)
{
    return cfg_kafka_secret(name, strlen(name));
}

static bool set_prop(rd_kafka_conf_t *conf, const char *name, const char *value, char *err,
                     size_t errlen)
{
    char why[512];

    if (rd_kafka_conf_set(conf, name, value, why, sizeof(why)) != RD_KAFKA_CONF_OK) {
        if (sink_prop_is_secret(name))
            snprintf(err, errlen, "kafka property %s (value not shown): %s", name, why);
        else
            snprintf(err, errlen, "kafka property %s=%s: %s", name, value, why);
        return false;
    }
    return true;
}

int sink_prop_check(const char *name, const char *value, char *err, size_t errlen)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    bool ok = set_prop(conf, name, value, err, errlen);

    rd_kafka_conf_destroy(conf);
    return ok ? 0 : -1;
}

/* The relay's defaults, then the brokers, then the user's -X properties:
 * later ones win, so -X can override any default. */
bool sink_kafka_set_props(rd_kafka_conf_t *conf, const struct sink_prop *defaults, size_t ndefaults,
                          const char *brokers, const struct sink_prop *props, size_t nprops,
                          char *err, size_t errlen)
{
    for (size_t i = 0; i < ndefaults; i++)
        if (!set_prop(conf, defaults[i].name, defaults[i].value, err, errlen))
            return false;
    if (brokers != NULL && !set_prop(conf, "bootstrap.servers", brokers, err, errlen))
        return false;
    for (size_t i = 0; i < nprops; i++)
        if (!set_prop(conf, props[i].name, props[i].value, err, errlen))
            return false;
    return true;
}

struct sink *sink_new(const char *brokers, const struct sink_prop *props, size_t nprops,
                      sink_delivery_fn on_delivery, void *arg, char *err, size_t errlen)
{
    /* Relay defaults (docs/protocol.md#k1): never give up on a message
     * (message.timeout.ms=0), since a timed-out message would be a gap. */
    static const struct sink_prop defaults[] = {
        {"enable.idempotence", "true"},
        {"acks", "all"},
        {"message.timeout.ms", "0"},
        {"partitioner", "murmur2_random"},
        {"linger.ms", "5"},
        {"queue.buffering.max.messages", "20000"},
        {"queue.buffering.max.kbytes", "16384"},
        {"client.id", "cdc-relay"},
        /* broker state and round-trip for /metrics and /readyz */
        {"statistics.interval.ms", "1000"},
    };
    struct sink *s = calloc(1, sizeof(*s));
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char why[512];

    if (s == NULL || conf == NULL) {
        snprintf(err, errlen, "out of memory");
        if (conf != NULL)
            rd_kafka_conf_destroy(conf);
        free(s);
        return NULL;
    }
    s->wake[0] = s->wake[1] = -1;
    s->on_delivery = on_delivery;
    s->arg = arg;
    if (!sink_kafka_set_props(conf, defaults, sizeof(defaults) / sizeof(defaults[0]), brokers,
                              props, nprops, err, errlen))
        goto fail;
    rd_kafka_conf_set_opaque(conf, s);
    rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
    rd_kafka_conf_set_error_cb(conf, error_cb);
    rd_kafka_conf_set_log_cb(conf, sink_kafka_log_cb);
    rd_kafka_conf_set_stats_cb(conf, stats_cb);
    s->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof(why));
    if (s->rk == NULL) {
        snprintf(err, errlen, "cannot create Kafka producer: %s", why);
        goto fail;
    }
    conf = NULL; /* owned by rk now */
    if (pipe(s->wake) != 0) {
        snprintf(err, errlen, "pipe: out of file descriptors");
        goto fail;
    }
    fcntl(s->wake[0], F_SETFL, O_NONBLOCK);
    fcntl(s->wake[1], F_SETFL, O_NONBLOCK);
    s->mainq = rd_kafka_queue_get_main(s->rk);
    rd_kafka_queue_io_event_enable(s->mainq, s->wake[1], "1", 1);
    return s;
fail:
    if (conf != NULL)
        rd_kafka_conf_destroy(conf);
    sink_free(s);
    return NULL;
}

void sink_free(struct sink *s)
{
    if (s == NULL)
        return;
    if (s->rk != NULL) {
        /* The callback must not reach a relay that is tearing this sink
         * down: purged messages were never confirmed, so dropping their
         * reports is safe. */
        s->on_delivery = NULL;
        while (s->pending != NULL) {
            struct dl_pending *p = s->pending;
            s->pending = p->next;
            pending_free(p);
        }
        rd_kafka_purge(s->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        if (s->mainq != NULL) {
            rd_kafka_queue_io_event_enable(s->mainq, -1, NULL, 0);
            rd_kafka_queue_destroy(s->mainq);
        }
        rd_kafka_destroy(s->rk);
    }
    if (s->wake[0] >= 0)
        close(s->wake[0]);
    if (s->wake[1] >= 0)
        close(s->wake[1]);
    free(s);
}

/*
 * The headers of an event (docs/architecture.md#fixed-interfaces): id,
 * event_type, aggregate_type, lsn, commit_ts, then traceparent and the
 * --header-columns ones, then replayed and replay_request on a re-sent
 * event (cdc-relay reemit). Poll mode has no commit LSN: its messages carry no
 * lsn header at all rather than an empty or made-up one. Columns a bad row
 * lacks (a dead-letter copy) are left out; a NULL header column is a header
 * with a null value.
 */
static rd_kafka_headers_t *event_headers(const struct outbox_event *ev,
                                         const struct sink_meta *meta)
{
    rd_kafka_headers_t *hdrs = rd_kafka_headers_new(6 + ev->nheaders + 5);
    const struct pgout_str *cols[] = {&ev->id, &ev->event_type, &ev->aggregate_type};
    static const char *const names[] = {"id", "event_type", "aggregate_type"};

    for (size_t i = 0; i < sizeof(cols) / sizeof(cols[0]); i++)
        if (cols[i]->ptr != NULL)
            rd_kafka_header_add(hdrs, names[i], -1, cols[i]->ptr, (ssize_t)cols[i]->len);
    if (meta->lsn != NULL)
        rd_kafka_header_add(hdrs, "lsn", -1, meta->lsn, -1);
    rd_kafka_header_add(hdrs, "commit_ts", -1, meta->commit_ts, -1);
    if (ev->traceparent.ptr != NULL)
        rd_kafka_header_add(hdrs, "traceparent", -1, ev->traceparent.ptr,
                            (ssize_t)ev->traceparent.len);
    for (size_t i = 0; i < ev->nheaders; i++)
        rd_kafka_header_add(hdrs, ev->headers[i].name, -1, ev->headers[i].value.ptr,
                            (ssize_t)ev->headers[i].value.len);
    if (meta->replay_request != NULL) {
        rd_kafka_header_add(hdrs, SINK_REPLAYED_HDR, -1, "true", -1);
        rd_kafka_header_add(hdrs, SINK_REPLAY_REQUEST_HDR, -1, meta->replay_request, -1);
    }
    return hdrs;
}

enum sink_status sink_produce(struct sink *s, const char *topic, const struct outbox_event *ev,
                              const struct sink_meta *meta, uint64_t seq, char *err, size_t errlen)
{
    rd_kafka_headers_t *hdrs = event_headers(ev, meta);
    rd_kafka_resp_err_t rerr = rd_kafka_producev(
        s->rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_KEY(ev->aggregate_id.ptr, ev->aggregate_id.len),
        RD_KAFKA_V_VALUE((void *)ev->payload.ptr, ev->payload.len), RD_KAFKA_V_HEADERS(hdrs),
        RD_KAFKA_V_OPAQUE((void *)(uintptr_t)seq), RD_KAFKA_V_END);

    if (rerr != RD_KAFKA_RESP_ERR_NO_ERROR)
        rd_kafka_headers_destroy(hdrs); /* owned by the message only once it is queued */
    switch (rerr) {
    case RD_KAFKA_RESP_ERR_NO_ERROR:
        return SINK_OK;
    case RD_KAFKA_RESP_ERR__QUEUE_FULL:
        /* Full with nothing queued: this one message is larger than the
         * whole queue (queue.buffering.max.kbytes) and will never fit. */
        if (rd_kafka_outq_len(s->rk) == 0) {
            snprintf(err, errlen,
                     "message of %zu bytes does not fit in the producer queue; raise "
                     "queue.buffering.max.kbytes",
                     ev->payload.len);
            return SINK_ETOOLARGE;
        }
        return SINK_QUEUE_FULL;
    case RD_KAFKA_RESP_ERR__FATAL:
        snprintf(err, errlen, "producer is in a fatal state");
        return SINK_EFATAL;
    default:
        snprintf(err, errlen, "%s", rd_kafka_err2str(rerr));
        if (error_is_size(rerr))
            return SINK_ETOOLARGE;
        return sink_kafka_error_is_permanent(rerr) ? SINK_EPERMANENT : SINK_EFATAL;
    }
}

void sink_kafka_drain_wakeup(struct sink *s)
{
    char buf[64];
    while (read(s->wake[0], buf, sizeof(buf)) > 0)
        ;
}

void sink_poll(struct sink *s, int timeout_ms)
{
    sink_kafka_drain_wakeup(s);
    rd_kafka_poll(s->rk, timeout_ms);
    send_pending(s);
}

int sink_flush(struct sink *s, int timeout_ms)
{
    struct timespec t0, t;
    int left = timeout_ms;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        rd_kafka_flush(s->rk, left);
        send_pending(s); /* copies the flush's reports queued */
        clock_gettime(CLOCK_MONOTONIC, &t);
        left =
            timeout_ms - (int)((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000);
        if ((s->npending == 0 && rd_kafka_outq_len(s->rk) == 0) || left <= 0)
            break;
    }
    sink_kafka_drain_wakeup(s);
    return rd_kafka_outq_len(s->rk) + s->npending;
}

int sink_outstanding(const struct sink *s)
{
    return rd_kafka_outq_len(s->rk) + s->npending;
}

void sink_set_dead_letter(struct sink *s, const char *topic, sink_dead_letter_fn on_dead_letter)
{
    s->dl_topic = topic;
    s->on_dead_letter = on_dead_letter;
}

enum sink_status sink_produce_dead_letter(struct sink *s, const struct outbox_event *ev,
                                          const struct sink_meta *meta,
                                          const struct sink_dead_letter *dl, uint64_t seq,
                                          char *err, size_t errlen)
{
    rd_kafka_headers_t *hdrs;
    rd_kafka_resp_err_t rerr;

    if (s->dl_topic == NULL) {
        snprintf(err, errlen, "no dead-letter topic");
        return SINK_EPERMANENT;
    }
    /* The event's own headers as far as it has them, then the dl_* ones. */
    hdrs = event_headers(ev, meta);
    rd_kafka_header_add(hdrs, SINK_DL_TOPIC_HDR, -1,
                        dl->original_topic != NULL ? dl->original_topic : "", -1);
    rd_kafka_header_add(hdrs, SINK_DL_ERROR_HDR, -1, dl->error, -1);
    rd_kafka_header_add(hdrs, SINK_DL_ID_HDR, -1, ev->id.ptr != NULL ? ev->id.ptr : "?",
                        ev->id.ptr != NULL ? (ssize_t)ev->id.len : -1);
    rd_kafka_header_add(hdrs, SINK_DL_LSN_HDR, -1, meta->lsn, -1);
    if (dl->drop_value)
        rd_kafka_header_add(hdrs, SINK_DL_DROPPED_HDR, -1, "true", -1);
    rerr = rd_kafka_producev(
        s->rk, RD_KAFKA_V_TOPIC(s->dl_topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_KEY(ev->aggregate_id.ptr, ev->aggregate_id.len),
        RD_KAFKA_V_VALUE(dl->drop_value ? NULL : (void *)ev->payload.ptr,
                         dl->drop_value ? 0 : ev->payload.len),
        RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_OPAQUE((void *)(uintptr_t)seq), RD_KAFKA_V_END);
    if (rerr == RD_KAFKA_RESP_ERR_NO_ERROR)
        return SINK_OK; /* hdrs owned by the message */
    rd_kafka_headers_destroy(hdrs);
    if (rerr == RD_KAFKA_RESP_ERR__QUEUE_FULL && rd_kafka_outq_len(s->rk) > 0)
        return SINK_QUEUE_FULL;
    if (rerr == RD_KAFKA_RESP_ERR__FATAL) {
        snprintf(err, errlen, "producer is in a fatal state");
        return SINK_EFATAL;
    }
    snprintf(err, errlen, "dead-letter copy to topic %s cannot be produced: %s", s->dl_topic,
             rd_kafka_err2str(rerr));
    return SINK_EPERMANENT;
}

bool sink_fatal(struct sink *s, char *err, size_t errlen)
{
    return rd_kafka_fatal_error(s->rk, err, errlen) != RD_KAFKA_RESP_ERR_NO_ERROR;
}

int sink_wakeup_fd(const struct sink *s)
{
    return s->wake[0];
}

void sink_stats(const struct sink *s, struct sink_stats *out)
{
    *out = s->stats;
}

rd_kafka_t *sink_kafka_handle(struct sink *s)
{
    return s->rk;
}

bool sink_kafka_error_is_fence(rd_kafka_resp_err_t err)
{
    return err == RD_KAFKA_RESP_ERR__FENCED || err == RD_KAFKA_RESP_ERR_PRODUCER_FENCED ||
           err == RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH;
}

bool sink_fenced(struct sink *s)
{
    char why[256];
    rd_kafka_resp_err_t code = rd_kafka_fatal_error(s->rk, why, sizeof(why));

    return sink_kafka_error_is_fence(code);
}

/* ---- the loops' view of the producer (cdc/sink_ops.h) --------------------- */

static enum sink_status ops_produce(void *s, const char *topic, const struct outbox_event *ev,
                                    const struct sink_meta *meta, uint64_t seq, char *err,
                                    size_t errlen)
{
    return sink_produce(s, topic, ev, meta, seq, err, errlen);
}

static enum sink_status ops_produce_dead_letter(void *s, const struct outbox_event *ev,
                                                const struct sink_meta *meta,
                                                const struct sink_dead_letter *dl, uint64_t seq,
                                                char *err, size_t errlen)
{
    return sink_produce_dead_letter(s, ev, meta, dl, seq, err, errlen);
}

static void ops_poll(void *s, int timeout_ms)
{
    sink_poll(s, timeout_ms);
}

static int ops_flush(void *s, int timeout_ms)
{
    return sink_flush(s, timeout_ms);
}

static bool ops_fatal(void *s, char *err, size_t errlen)
{
    return sink_fatal(s, err, errlen);
}

static bool ops_fenced(void *s)
{
    return sink_fenced(s);
}

static int ops_wakeup_fd(const void *s)
{
    return sink_wakeup_fd(s);
}

static void ops_stats(const void *s, struct sink_stats *out)
{
    sink_stats(s, out);
}

const struct relay_sink_ops sink_kafka_ops = {
    ops_produce, ops_produce_dead_letter, ops_poll,  ops_flush, ops_fatal,
    ops_fenced,  ops_wakeup_fd,           ops_stats,
};

const char *sink_kafka_version(void)
{
    return rd_kafka_version_str();
}

const char *sink_jansson_version(void)
{
    return jansson_version_str();
}
