/*
 * Transactions and the checkpoint topic of --exactly-once, on the producer
 * of cdc/sink_kafka.c. Every transactional error is sorted into retry,
 * abort, fenced or fatal as rdkafka.h's transactional API describes.
 */
#include "eos_kafka.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <librdkafka/rdkafka.h>

#include "lsn.h"
#include "sink_kafka_int.h"

static enum sink_txn_status txn_status(rd_kafka_error_t *error, const char *what, char *err,
                                       size_t errlen)
{
    enum sink_txn_status st;
    rd_kafka_resp_err_t code;

    if (error == NULL)
        return SINK_TXN_OK;
    code = rd_kafka_error_code(error);
    snprintf(err, errlen, "%s: %s", what, rd_kafka_error_string(error));
    if (sink_kafka_error_is_fence(code))
        st = SINK_TXN_FENCED;
    else if (rd_kafka_error_is_fatal(error))
        st = SINK_TXN_FATAL;
    else if (rd_kafka_error_txn_requires_abort(error))
        st = SINK_TXN_ABORT;
    else if (rd_kafka_error_is_retriable(error))
        st = SINK_TXN_RETRY;
    else
        st = SINK_TXN_FATAL; /* "treat ... neither retriable, abortable, or fatal as fatal" */
    rd_kafka_error_destroy(error);
    return st;
}

enum sink_txn_status sink_txn_init(struct sink *s, int timeout_ms, char *err, size_t errlen)
{
    return txn_status(rd_kafka_init_transactions(sink_kafka_handle(s), timeout_ms),
                      "init_transactions", err, errlen);
}

enum sink_txn_status sink_txn_begin(struct sink *s, char *err, size_t errlen)
{
    return txn_status(rd_kafka_begin_transaction(sink_kafka_handle(s)), "begin_transaction", err,
                      errlen);
}

enum sink_txn_status sink_txn_commit(struct sink *s, int timeout_ms, char *err, size_t errlen)
{
    enum sink_txn_status st =
        txn_status(rd_kafka_commit_transaction(sink_kafka_handle(s), timeout_ms),
                   "commit_transaction", err, errlen);

    sink_kafka_drain_wakeup(s);
    return st;
}

enum sink_txn_status sink_txn_abort(struct sink *s, int timeout_ms, char *err, size_t errlen)
{
    enum sink_txn_status st =
        txn_status(rd_kafka_abort_transaction(sink_kafka_handle(s), timeout_ms),
                   "abort_transaction", err, errlen);

    sink_kafka_drain_wakeup(s);
    return st;
}

size_t sink_checkpoint_format(const struct sink_checkpoint *cp, char *buf, size_t buflen)
{
    json_t *o = json_object();
    char lsn[LSN_STR_MAX];
    char *text;
    size_t n = 0;

    json_object_set_new(o, "slot", json_string(cp->slot));
    json_object_set_new(o, "end_lsn", json_string(lsn_format(cp->end_lsn, lsn, sizeof(lsn))));
    json_object_set_new(o, "systemid", json_string(cp->systemid));
    text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (text != NULL && strlen(text) < buflen) {
        n = strlen(text);
        memcpy(buf, text, n + 1);
    }
    free(text);
    return n;
}

bool sink_checkpoint_parse(const char *json, size_t len, struct sink_checkpoint *out)
{
    json_t *root = json_loadb(json, len, 0, NULL);
    const char *slot = json_string_value(json_object_get(root, "slot"));
    const char *lsn = json_string_value(json_object_get(root, "end_lsn"));
    const char *sysid = json_string_value(json_object_get(root, "systemid"));
    struct sink_checkpoint cp;
    bool ok = false;

    memset(&cp, 0, sizeof(cp));
    if (slot != NULL && lsn != NULL && sysid != NULL && strlen(slot) < sizeof(cp.slot) &&
        strlen(sysid) < sizeof(cp.systemid) && lsn_parse(lsn, &cp.end_lsn)) {
        memcpy(cp.slot, slot, strlen(slot) + 1);
        memcpy(cp.systemid, sysid, strlen(sysid) + 1);
        *out = cp;
        ok = true;
    }
    json_decref(root);
    return ok;
}

enum sink_status sink_checkpoint_produce(struct sink *s, const char *topic,
                                         const struct sink_checkpoint *cp, char *err, size_t errlen)
{
    char value[512];
    size_t n = sink_checkpoint_format(cp, value, sizeof(value));
    rd_kafka_resp_err_t rerr;

    if (n == 0) {
        snprintf(err, errlen, "checkpoint record does not fit in %zu bytes", sizeof(value));
        return SINK_EPERMANENT;
    }
    for (;;) {
        rerr = rd_kafka_producev(
            sink_kafka_handle(s), RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_KEY(cp->slot, strlen(cp->slot)), RD_KAFKA_V_VALUE(value, n),
            RD_KAFKA_V_OPAQUE((void *)(uintptr_t)SINK_SEQ_CHECKPOINT), RD_KAFKA_V_END);
        if (rerr != RD_KAFKA_RESP_ERR__QUEUE_FULL)
            break;
        /* One small record: the queue drains while the reports are served. */
        sink_poll(s, 100);
    }
    if (rerr == RD_KAFKA_RESP_ERR_NO_ERROR)
        return SINK_OK;
    snprintf(err, errlen, "checkpoint to topic %s: %s", topic, rd_kafka_err2str(rerr));
    return sink_kafka_error_is_permanent(rerr) ? SINK_EPERMANENT : SINK_EFATAL;
}

/* 1 when the broker lists topic, 0 when not, -1 on error. */
static int topic_exists(rd_kafka_t *rk, const char *topic, int timeout_ms, char *err, size_t errlen)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t rerr = rd_kafka_metadata(rk, 1, NULL, &md, timeout_ms);
    int found = 0;

    if (rerr != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(err, errlen, "metadata: %s", rd_kafka_err2str(rerr));
        return -1;
    }
    for (int i = 0; i < md->topic_cnt; i++)
        if (strcmp(md->topics[i].topic, topic) == 0 &&
            md->topics[i].err == RD_KAFKA_RESP_ERR_NO_ERROR)
            found = 1;
    rd_kafka_metadata_destroy(md);
    return found;
}

int sink_checkpoint_topic_ensure(struct sink *s, const char *topic, int timeout_ms, char *err,
                                 size_t errlen)
{
    char why[512];
    rd_kafka_NewTopic_t *nt;
    rd_kafka_queue_t *q;
    rd_kafka_event_t *ev;
    const rd_kafka_CreateTopics_result_t *res;
    const rd_kafka_topic_result_t **results;
    size_t nres = 0;
    int found = topic_exists(sink_kafka_handle(s), topic, timeout_ms, err, errlen);
    int rc = -1;

    if (found != 0)
        return found < 0 ? -1 : 0;
    nt = rd_kafka_NewTopic_new(topic, 1, -1, why, sizeof(why));
    if (nt == NULL) {
        snprintf(err, errlen, "checkpoint topic %s: %s", topic, why);
        return -1;
    }
    if (rd_kafka_NewTopic_set_config(nt, "cleanup.policy", "compact") !=
        RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(err, errlen, "checkpoint topic %s: cannot set cleanup.policy", topic);
        rd_kafka_NewTopic_destroy(nt);
        return -1;
    }
    q = rd_kafka_queue_new(sink_kafka_handle(s));
    rd_kafka_CreateTopics(sink_kafka_handle(s), &nt, 1, NULL, q);
    ev = rd_kafka_queue_poll(q, timeout_ms);
    if (ev == NULL) {
        snprintf(err, errlen, "creating checkpoint topic %s: no answer in %d ms", topic,
                 timeout_ms);
    } else if (rd_kafka_event_error(ev) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(err, errlen, "creating checkpoint topic %s: %s", topic,
                 rd_kafka_event_error_string(ev));
    } else {
        res = rd_kafka_event_CreateTopics_result(ev);
        results = rd_kafka_CreateTopics_result_topics(res, &nres);
        if (nres == 1 &&
            (rd_kafka_topic_result_error(results[0]) == RD_KAFKA_RESP_ERR_NO_ERROR ||
             rd_kafka_topic_result_error(results[0]) == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS))
            rc = rd_kafka_topic_result_error(results[0]) == RD_KAFKA_RESP_ERR_NO_ERROR ? 1 : 0;
        else
            snprintf(err, errlen, "creating checkpoint topic %s: %s", topic,
                     nres == 1 ? rd_kafka_topic_result_error_string(results[0]) : "no result");
    }
    if (ev != NULL)
        rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(q);
    rd_kafka_NewTopic_destroy(nt);
    return rc;
}

int sink_checkpoint_read(const char *brokers, const struct sink_prop *props, size_t nprops,
                         const char *topic, const char *slot, int timeout_ms,
                         struct sink_checkpoint *out, char *err, size_t errlen)
{
    /* A consumer of its own: read_committed is what makes a checkpoint of an
     * aborted or still open transaction invisible. No group: partitions are
     * assigned, nothing is committed. */
    static const struct sink_prop defaults[] = {
        {"isolation.level", "read_committed"}, {"enable.partition.eof", "true"},
        {"enable.auto.commit", "false"},       {"group.id", "cdc-relay-checkpoint-reader"},
        {"client.id", "cdc-relay-checkpoint"},
    };
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_t *rk = NULL;
    rd_kafka_topic_partition_list_t *parts = NULL;
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *rkt = NULL;
    char why[512];
    int64_t deadline_ms, now_ms;
    struct timespec ts;
    int eofs = 0, rc = -1, found = 0;

    if (!sink_kafka_set_props(conf, defaults, sizeof(defaults) / sizeof(defaults[0]), brokers,
                              props, nprops, err, errlen))
        goto out;
    rd_kafka_conf_set_log_cb(conf, sink_kafka_log_cb);
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof(why));
    if (rk == NULL) {
        snprintf(err, errlen, "cannot create checkpoint consumer: %s", why);
        goto out;
    }
    conf = NULL;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    deadline_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + timeout_ms;
    rkt = rd_kafka_topic_new(rk, topic, NULL);
    if (rd_kafka_metadata(rk, 0, rkt, &md, timeout_ms) != RD_KAFKA_RESP_ERR_NO_ERROR ||
        md->topic_cnt != 1) {
        snprintf(err, errlen, "checkpoint topic %s: no metadata", topic);
        goto out;
    }
    if (md->topics[0].err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
        rc = 0; /* no topic, no checkpoint */
        goto out;
    }
    if (md->topics[0].err != RD_KAFKA_RESP_ERR_NO_ERROR || md->topics[0].partition_cnt == 0) {
        snprintf(err, errlen, "checkpoint topic %s: %s", topic,
                 rd_kafka_err2str(md->topics[0].err));
        goto out;
    }
    parts = rd_kafka_topic_partition_list_new(md->topics[0].partition_cnt);
    for (int i = 0; i < md->topics[0].partition_cnt; i++)
        rd_kafka_topic_partition_list_add(parts, topic, md->topics[0].partitions[i].id)->offset =
            RD_KAFKA_OFFSET_BEGINNING;
    if (rd_kafka_assign(rk, parts) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(err, errlen, "checkpoint topic %s: cannot assign partitions", topic);
        goto out;
    }
    while (eofs < parts->cnt) {
        rd_kafka_message_t *rkm;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        now_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
        if (now_ms >= deadline_ms) {
            snprintf(err, errlen,
                     "checkpoint topic %s: its end was not reached within %d ms (an open "
                     "transaction holds the last stable offset back?)",
                     topic, timeout_ms);
            goto out;
        }
        rkm = rd_kafka_consumer_poll(
            rk, (int)(deadline_ms - now_ms < 200 ? deadline_ms - now_ms : 200));
        if (rkm == NULL)
            continue;
        if (rkm->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            eofs++;
        } else if (rkm->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            snprintf(err, errlen, "checkpoint topic %s: %s", topic, rd_kafka_message_errstr(rkm));
            rd_kafka_message_destroy(rkm);
            goto out;
        } else if (rkm->key_len == strlen(slot) && memcmp(rkm->key, slot, rkm->key_len) == 0) {
            if (!sink_checkpoint_parse(rkm->payload, rkm->len, out)) {
                snprintf(err, errlen,
                         "checkpoint topic %s: record at offset %lld is not a checkpoint", topic,
                         (long long)rkm->offset);
                rd_kafka_message_destroy(rkm);
                goto out;
            }
            found = 1; /* later records (higher offsets) replace earlier ones */
        }
        rd_kafka_message_destroy(rkm);
    }
    rc = found;
out:
    if (parts != NULL)
        rd_kafka_topic_partition_list_destroy(parts);
    if (md != NULL)
        rd_kafka_metadata_destroy(md);
    if (rkt != NULL)
        rd_kafka_topic_destroy(rkt);
    if (rk != NULL) {
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
    }
    if (conf != NULL)
        rd_kafka_conf_destroy(conf);
    return rc;
}
